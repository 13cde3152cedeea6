#!/usr/bin/env bash
# Coverage-guided fuzzing of the readers of outside bytes (Tests/GraphCompiler.Fuzz): AFL++ drives SharpFuzz's loop in
# `fuzz <reader>`, over a copy of the build whose reader assemblies SharpFuzz instrumented.
#   bash scripts/fuzz.sh [reader|all] [seconds per reader]      (default: all, 600)
# Readers: safetensors params onnx symbol tsv vocab predict. Installs what it needs (afl++ from apt, the SharpFuzz
# instrumenter from the local tool manifest .config/dotnet-tools.json); builds Release unless FUZZ_NO_BUILD=1 (CI has
# just built). Findings go to out/fuzz/findings/<reader>/default/{crashes,hangs}; each is replayed (`fuzz <reader>
# FILE`: the exception, or the time over 1 s) and the script fails when any reproduces. A timeout that does not
# reproduce on replay (a busy shared host) is reported but does not fail. Prints a table of executions, corpus and
# coverage per reader.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

readers=(safetensors params onnx symbol tsv vocab predict)
which=${1:-all}
seconds=${2:-600}
if [ "$which" = all ]; then
  selected=("${readers[@]}")
elif [[ " ${readers[*]} " == *" $which "* ]]; then
  selected=("$which")
else
  echo "fuzz: unknown reader '$which' (one of: ${readers[*]}, or all)" >&2
  exit 2
fi

if ! command -v afl-fuzz >/dev/null; then
  echo "fuzz: installing afl++"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q afl++
fi
dotnet tool restore >/dev/null

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  dotnet build Tests/GraphCompiler.Fuzz -c Release
fi

# Instrument a copy, never the build the tests run. Only the readers' code is instrumented (not the kernels), plus the
# libraries that parse for them (protobuf for ONNX, the tokenizer for vocab.txt).
bin=out/fuzz/bin
rm -rf "$bin"
mkdir -p "$bin"
cp -a Tests/GraphCompiler.Fuzz/bin/Release/net10.0/. "$bin/"
instrument() { dotnet tool run sharpfuzz "$bin/$1" "${@:2}" >/dev/null; }
instrument GraphCompiler.Runtime.dll GraphCompiler.Runtime.Weights
instrument GraphCompiler.Interop.dll GraphCompiler.Runtime.Weights GraphCompiler.Runtime.Onnx GraphCompiler.Runtime.Symbol
instrument GraphCompiler.Data.dll GraphCompiler.Runtime.Data GraphCompiler.Runtime.Text
instrument predict.dll GraphCompiler.Samples.Predict
instrument Google.Protobuf.dll
instrument Microsoft.ML.Tokenizers.dll

# This host is shared and not tuned for fuzzing: no CPU pinning or frequency check, crashes are exceptions that SharpFuzz
# reports (not core dumps, so core_pattern does not matter), no UI. The harness warms up on the seeds before afl-fuzz
# starts timing, so the first input is not a 1 s "hang".
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
  AFL_FORKSRV_INIT_TMOUT=120000

stat() { sed -n "s/^$1 *: //p" "$2"; }
failed=0
summary=$(printf '%-12s %10s %8s %10s %8s %8s %6s\n' reader execs corpus bitmap edges crashes hangs)
for reader in "${selected[@]}"; do
  out=out/fuzz/findings/$reader
  rm -rf "$out"
  mkdir -p "$out"
  echo "fuzz: $reader for ${seconds} s"
  FUZZ_WARMUP_DIR="Tests/GraphCompiler.Fuzz/Corpus/$reader" \
    afl-fuzz -i "Tests/GraphCompiler.Fuzz/Corpus/$reader" -o "$out" -t 1000 -m none -V "$seconds" \
    -- dotnet "$bin/fuzz.dll" "$reader" >"$out/afl.log" 2>&1 || { tail -30 "$out/afl.log" >&2; failed=1; continue; }
  stats=$out/default/fuzzer_stats
  crashes=("$out"/default/crashes/id:*)
  hangs=("$out"/default/hangs/id:*)
  [ -e "${crashes[0]}" ] || crashes=()
  [ -e "${hangs[0]}" ] || hangs=()
  if [ ${#crashes[@]} -gt 0 ]; then
    echo "fuzz: $reader: ${#crashes[@]} crashing inputs in $out/default/crashes:" >&2
    timeout 300 dotnet "$bin/fuzz.dll" "$reader" "${crashes[@]}" | grep 'BUG' | cut -c1-600 >&2 || true
    failed=1
  fi
  if [ ${#hangs[@]} -gt 0 ]; then
    if timeout 300 dotnet "$bin/fuzz.dll" "$reader" "${hangs[@]}" >"$out/hangs-replayed.txt"; then
      echo "fuzz: $reader: ${#hangs[@]} inputs timed out under afl-fuzz but run within 1 s on replay (host load); see $out/default/hangs"
    else
      echo "fuzz: $reader: hangs reproduced (over 1 s) in $out/default/hangs:" >&2
      grep 'BUG' "$out/hangs-replayed.txt" | cut -c1-600 >&2 || true
      failed=1
    fi
  fi
  summary+=$'\n'$(printf '%-12s %10s %8s %10s %8s %8s %6s' "$reader" "$(stat execs_done "$stats")" "$(stat corpus_count "$stats")" \
    "$(stat bitmap_cvg "$stats")" "$(stat edges_found "$stats")" "${#crashes[@]}" "${#hangs[@]}")
done

echo "$summary"
if [ "$failed" != 0 ]; then
  echo "fuzz: FAILED: a reader crashed, hung, or afl-fuzz could not run (above)" >&2
  exit 1
fi
