#!/usr/bin/env bash
# The main job: set up, build, and run the demo sample (declared models compiled at build time; prints IR and shapes).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
dotnet run -c Release --project Samples/Demo -- --dump-ir "$@"
