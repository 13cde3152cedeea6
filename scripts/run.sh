#!/usr/bin/env bash
# The main job: set up, build, and run the MRPC sample (fine-tune pretrained MiniLM; --data DIR for real MRPC).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
dotnet run -c Release --project Samples/Mrpc -- "$@"
