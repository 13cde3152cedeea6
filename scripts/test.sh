#!/usr/bin/env bash
# The tests: set up, build the whole solution (warnings are errors), run every xunit test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export MRPC_DIR="${MRPC_DIR:-$(cd .. && pwd)/shared/data/mrpc}"
dotnet build GraphCompiler.sln -c Release
dotnet test GraphCompiler.sln -c Release --no-build --logger "console;verbosity=normal" "$@"
