#!/usr/bin/env bash
# Publishes the deployment binary into out/predict: predict, a launcher that runs the build for the highest x86-64 level
# the CPU supports (NativeAOT has no code multi-versioning), predict-x86-64-v2/-v3/-v4 (Samples/Predict, one native
# build per level), and libtorch's shared libraries once, shared by all of them.
# Each level is published into out/predict-build/LEVEL (compiled from native intermediates of its own, libraries
# hard-linked rather than copied), then out/predict is assembled from those, copying only files that changed: a re-run
# with nothing changed takes seconds.
# PREDICT_LEVELS="x86-64-v3 x86-64-v4" publishes a subset (the launcher picks among the builds present).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

levels=(${PREDICT_LEVELS:-x86-64-v2 x86-64-v3 x86-64-v4})
build=out/predict-build
out=out/predict

restore=()
for level in "${levels[@]}"; do
  case "$level" in
    x86-64-v2|x86-64-v3|x86-64-v4) ;;
    *) echo "publish-predict: unknown level '$level' in PREDICT_LEVELS (x86-64-v2, x86-64-v3 or x86-64-v4)" >&2; exit 1 ;;
  esac
  start=$SECONDS
  # A fresh folder each time (files hard-linked, the native code from its own intermediates: still seconds when nothing
  # changed), so that nothing an earlier publish wrote lingers in it.
  rm -rf "$build/$level"
  dotnet publish Samples/Predict "${restore[@]}" -c Release -r linux-x64 -p:PredictLevel="$level" -o "$build/$level"
  echo "publish-predict: $level in $((SECONDS - start)) s"
  restore=(--no-restore)
done
start=$SECONDS
dotnet publish Samples/Predict.Launcher -c Release -r linux-x64 -o "$build/launcher"
echo "publish-predict: launcher in $((SECONDS - start)) s"

# Copies $1 to $2 unless $2 already has its size and modification time.
sync_file() {
  if [ ! -e "$2" ] || [ "$(stat -c %s.%Y "$1")" != "$(stat -c %s.%Y "$2")" ]; then
    mkdir -p "$(dirname "$2")"
    rm -f "$2"
    cp -p "$1" "$2"
  fi
}

# The shared files come from the first level's folder; they are the same in every level's (the same publish inputs).
# Left out: the program itself (one per level below); its native symbols (they stay in out/predict-build/LEVEL/, beside
# the binary they match); managed .pdb files (a native executable has no use for them); ONNX Runtime's Windows DLLs;
# what predict never loads from the libtorch package: its Python binding (and libshm, libtorch_global_deps, which only
# Python's torch loads), test libraries and optional backends (AOTInductor custom ops, NNAPI, backend_with_compiler).
# What it loads (LD_DEBUG=files, batch prediction and serve): libLibTorchSharp, libtorch, libtorch_cpu, libc10, libgomp,
# and libonnxruntime for serve --engine onnxruntime.
# Never published in the first place (predict references neither GraphCompiler.Reporting nor the pretrained package):
# plotting natives (ScottPlot's Skia and HarfBuzz) and pretrained weights (an export carries the weights). If a reference
# ever brings them back, this fails rather than ship them.
mkdir -p "$out"
shared="$build/${levels[0]}"
unwanted=$(cd "$shared" && find . -path ./pretrained -prune -print -o \( -name 'libSkiaSharp*' -o -name 'libHarfBuzzSharp*' \
  -o -name 'ScottPlot*' -o -name 'Spectre.Console*' -o -name 'SentenceTransformers*' \) -print)
if [ -n "$unwanted" ]; then
  echo "publish-predict: the publish holds what a deployment never loads (a reference to GraphCompiler.Reporting or the" \
    "pretrained package?):" $unwanted >&2
  exit 1
fi
declare -A keep=()
while IFS= read -r -d '' file; do
  rel=${file#"$shared"/}
  case "$rel" in
    predict|predict.dbg|*.pdb|*.dll|libtorch_python.so|libshm.so|libtorch_global_deps.so|*_test.so) continue ;;
    libaoti_custom_ops.so|libnnapi_backend.so|libbackend_with_compiler.so) continue ;;
  esac
  sync_file "$file" "$out/$rel"
  keep[$rel]=1
done < <(find "$shared" -type f -print0)
for level in "${levels[@]}"; do
  sync_file "$build/$level/predict" "$out/predict-$level"
  keep[predict-$level]=1
done
sync_file "$build/launcher/predict-launcher" "$out/predict"
keep[predict]=1

# Remove what an earlier publish left that this one did not write (a level no longer built, the old single binary's
# predict.dbg).
while IFS= read -r -d '' file; do
  rel=${file#"$out"/}
  if [ -z "${keep[$rel]:-}" ]; then
    rm -f "$file"
  fi
done < <(find "$out" -type f -print0)
find "$out" -mindepth 1 -type d -empty -delete

# When the last publish finished: a publish compiles whatever changed, so the deployment binary's tests check that this is
# newer than the build they run from.
touch "$build/published"

echo "published: $(pwd)/$out/predict ($(cd "$out" && ls predict-x86-64-v* | tr '\n' ' ')+ launcher; $(du -sh "$out" | cut -f1)) (usage: predict --model PREFIX --input FILE.tsv --output FILE.tsv, or predict serve --model PREFIX [--port 8080])"
