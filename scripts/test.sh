#!/usr/bin/env bash
# The tests: set up, build the whole solution (warnings are errors), publish the deployment binary (its tests run
# out/predict/predict; published here, not inside the tests, so its native compilation does not compete with timed
# tests), run every xunit test (among them, last and alone, the outside-project test: every package packed, a project
# made from the `dotnet new` template outside the repository, built, run and published native, ~2.5 min); then, unless
# a filter was given, fuzz every reader of outside bytes for a short bounded
# time on its committed corpus (scripts/fuzz.sh: AFL++ + SharpFuzz, FUZZ_SECONDS per reader, default 15; fails on a
# crash or a reproduced hang), and run the kernel tests again at each lower instruction-set level this CPU can run (and
# the main job's demo run and deployment binary at the AVX2 level), forced with the .NET runtime's, libtorch's and
# oneDNN's own switches (scripts/test-isa-levels.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export MRPC_DIR="${MRPC_DIR:-$(cd .. && pwd)/shared/data/mrpc}"
dotnet build GraphCompiler.sln -c Release
bash scripts/publish-predict.sh
dotnet test GraphCompiler.sln -c Release --no-build --logger "console;verbosity=normal" "$@"
if [ $# -eq 0 ]; then
  FUZZ_NO_BUILD=1 bash scripts/fuzz.sh all "${FUZZ_SECONDS:-15}"
  bash scripts/test-isa-levels.sh
fi
