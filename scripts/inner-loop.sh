#!/usr/bin/env bash
# The inner loop (issue 18, item 6): a plain `dotnet new console` project's incremental `dotnet build` after a trivial
# edit to Program.cs, against the `dotnet new graphcompiler-model` project's after an edit that changes no declaration
# (a comment appended to Program.cs), both outside the repository, built from the packages (scripts/pack.sh into a
# temporary feed under a version of its own; --feed DIR --version V reuses packed ones). Each project is built once
# to warm up, then RUNS times (default 5) alternately; prints every time, the medians and their ratio (target ≤ 1.5).
# --binlog DIR keeps a binary log of the template project's last incremental build (add REPORT_ANALYZER=1 for the
# generator's time in it: /p:ReportAnalyzer=true).
# The builds run with the environment's compiler settings; --server forces the compiler server on (the SDK's default,
# UseSharedCompilation=true, which some CI hosts turn off) and stops the server it started at the end (by its pid).
# Usage: bash scripts/inner-loop.sh [--feed DIR --version V] [--runs N] [--binlog DIR] [--server]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
runs=${RUNS:-5}
feed=""
version=""
binlog=""
server=0
while [ $# -gt 0 ]; do
  case "$1" in
    --feed) feed="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --binlog) binlog="$2"; shift 2 ;;
    --server) server=1; shift ;;
    *) echo "inner-loop: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
work=$(mktemp -d /tmp/gc-inner-loop-XXXXXX)
servers_before=$(pgrep -f 'Roslyn/bincore/VBCSCompiler' || true)
if [ "$server" = 1 ]; then export UseSharedCompilation=true; fi
packages=${NUGET_PACKAGES:-$HOME/.nuget/packages}
cleanup() {
  if [ -n "${packed_here:-}" ]; then
    for id in graphcompiler graphcompiler.dsl graphcompiler.registry graphcompiler.runtime graphcompiler.zoo graphcompiler.templates; do
      rm -rf "${packages:?}/$id/$version"
    done
  fi
  rm -rf "$work"
  if [ "$server" = 1 ]; then
    for pid in $(pgrep -f 'Roslyn/bincore/VBCSCompiler' || true); do
      grep -qx "$pid" <<< "$servers_before" || kill "$pid" 2>/dev/null || true
    done
  fi
}
trap cleanup EXIT

if [ -z "$feed" ]; then
  version="$(sed -n 's:.*<VersionPrefix>\(.*\)</VersionPrefix>.*:\1:p' build.props)-innerloop.$(date +%s)"
  feed="$work/feed"
  packed_here=1
  bash scripts/pack.sh --output "$feed" --version "$version" --artifacts "$work/artifacts" > "$work/pack.log" 2>&1 || { cat "$work/pack.log"; exit 1; }
fi
[ -n "$version" ] || { echo "inner-loop: --feed needs --version" >&2; exit 2; }

cd "$work"
DOTNET_CLI_HOME="$work/home" dotnet new install "$feed/GraphCompiler.Templates.$version.nupkg" > /dev/null
DOTNET_CLI_HOME="$work/home" dotnet new graphcompiler-model -n Model -o model > /dev/null
dotnet new console -n Plain -o plain > /dev/null
for p in model plain; do
  cat > "$p/NuGet.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$feed" />
  </packageSources>
</configuration>
CONFIG
  (cd "$p" && dotnet build > "$work/$p-first.log" 2>&1) || { cat "$work/$p-first.log"; exit 1; }
done

# One incremental build after an edit: seconds, wall clock.
timed_build() {
  local dir=$1 i=$2 extra=()
  echo "// edit $i" >> "$dir/Program.cs"
  if [ -n "$binlog" ] && [ "$dir" = model ] && [ "$i" = "$runs" ]; then
    mkdir -p "$binlog"
    extra=(-bl:"$binlog/model-incremental.binlog")
    [ "${REPORT_ANALYZER:-0}" = 1 ] && extra+=(-p:ReportAnalyzer=true)
  fi
  local t0 t1
  t0=$(date +%s.%N)
  (cd "$dir" && dotnet build --no-restore "${extra[@]}" > "$work/$dir-$i.log" 2>&1) || { cat "$work/$dir-$i.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

plain=()
model=()
for i in $(seq 1 "$runs"); do
  t=$(timed_build plain "$i"); plain+=("$t")
  t=$(timed_build model "$i"); model+=("$t")
  printf 'run %d: plain console %.2f s, graphcompiler-model %.2f s\n' "$i" "${plain[-1]}" "${model[-1]}"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mp=$(median "${plain[@]}")
mm=$(median "${model[@]}")
printf 'compiler server: %s\n' "$([ "${UseSharedCompilation:-true}" = false ] && echo 'off (UseSharedCompilation=false in the environment)' || echo on)"
printf 'median of %d: plain console %.2f s, graphcompiler-model %.2f s, ratio %.2f (target <= 1.5)\n' "$runs" "$mp" "$mm" "$(echo "$mm / $mp" | bc -l)"
if [ -n "$binlog" ]; then cp "$work"/model-"$runs".log "$binlog/"; echo "binlog: $binlog/model-incremental.binlog"; fi
