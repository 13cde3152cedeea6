#!/usr/bin/env bash
# The main job: set up, build the deployment binary, and run the MRPC sample (fine-tune pretrained MiniLM — --data DIR
# for real MRPC — then quantize to int8, export, re-import, time, and run the deployment binary on dev).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
bash scripts/publish-predict.sh
dotnet run -c Release --project Samples/Mrpc -- --deploy out/predict/predict "$@"
