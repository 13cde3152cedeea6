#!/usr/bin/env bash
# Packs every package into one folder: bash scripts/pack.sh [--output DIR] [--version V] [--artifacts DIR]
#   GraphCompiler (the compiler: generator + DSL + runtime as dependencies), GraphCompiler.Dsl, GraphCompiler.Registry,
#   GraphCompiler.Runtime (and every other project with IsPackable=true in GraphCompiler.sln), GraphCompiler.Zoo and
#   GraphCompiler.Templates (the `dotnet new graphcompiler-model` template); each .nupkg with its .snupkg where it has
#   a lib assembly.
# --output   where the packages go (default out/packages; emptied of *.nupkg/*.snupkg first)
# --version  one version for all of them (default: VersionPrefix in build.props), e.g. 0.2.0-preview.1
# --artifacts build into DIR (the SDK's artifacts layout) instead of each project's bin/obj, so packing with another
#            version leaves the solution's build untouched (the outside-project test uses this)
# Builds in Release with ContinuousIntegrationBuild=true (deterministic, source paths normalized); warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
output=out/packages
version=""
artifacts=""
while [ $# -gt 0 ]; do
  case "$1" in
    --output) output="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --artifacts) artifacts="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "pack: unknown argument '$1' (--output DIR, --version V, --artifacts DIR)" >&2; exit 2 ;;
  esac
done
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p "$output"
output=$(cd "$output" && pwd)
rm -f "$output"/*.nupkg "$output"/*.snupkg
props=(-c Release -p:ContinuousIntegrationBuild=true -o "$output")
[ -n "$version" ] && props+=(-p:Version="$version")
[ -n "$artifacts" ] && props+=(--artifacts-path "$artifacts")
start=$SECONDS
# The solution's packable projects (IsPackable=true in the project file), through a solution filter, so only they and
# what they reference are restored and built.
filter="$output/.packable.slnf"
projects=$(dotnet sln GraphCompiler.sln list | grep '\.csproj$' | while read -r p; do
  if grep -q '<IsPackable>true</IsPackable>' "$p"; then printf '"%s",' "$p"; fi
done)
printf '{ "solution": { "path": "%s", "projects": [ %s ] } }\n' "$(pwd)/GraphCompiler.sln" "${projects%,}" > "$filter"
dotnet pack "$filter" "${props[@]}"
rm -f "$filter"
dotnet pack packaging/GraphCompiler/GraphCompiler.csproj "${props[@]}"
dotnet pack packaging/GraphCompiler.Templates/GraphCompiler.Templates.csproj "${props[@]}"
echo "pack: $(ls "$output"/*.nupkg | wc -l) packages in $output in $((SECONDS - start)) s"
for p in "$output"/*.nupkg "$output"/*.snupkg; do
  [ -e "$p" ] && printf '  %-60s %8s\n' "$(basename "$p")" "$(du -h "$p" | cut -f1)"
done
