#!/usr/bin/env bash
# The tests: set up, build the whole solution (warnings are errors), publish the deployment binary (its tests run
# out/predict/predict; published here, not inside the tests, so its native compilation does not compete with timed
# tests), run every xunit test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export MRPC_DIR="${MRPC_DIR:-$(cd .. && pwd)/shared/data/mrpc}"
dotnet build GraphCompiler.sln -c Release
bash scripts/publish-predict.sh
dotnet test GraphCompiler.sln -c Release --no-build --logger "console;verbosity=normal" "$@"
