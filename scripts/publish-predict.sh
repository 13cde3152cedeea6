#!/usr/bin/env bash
# Publishes the deployment binary: Samples/Predict as one native (AOT) executable, out/predict/predict, with
# libtorch's shared libraries beside it. Incremental: a second run only relinks what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
dotnet publish Samples/Predict -c Release -r linux-x64 -o out/predict
echo "published: $(pwd)/out/predict/predict (usage: predict --model PREFIX --input FILE.tsv --output FILE.tsv)"
