#!/usr/bin/env bash
# Runs the kernel tests (Category=Kernels) and the whole-model checks against outside references (Category=Models:
# ONNX Runtime parity, stock-module parity, numerics, int8 agreement, gradient checks) again at every instruction-set
# level below this CPU's own, so each vector path is proven with the hardware instructions of its level on any host:
# 256-bit (AVX2), 128-bit (SSE) and none (the torch compositions). The AVX2 level also runs the main job's demo
# (Category=MainJob) unless that is this CPU's own level, where the full run already did; the deployment binary's
# forced x86-64-v3 run is part of the full run (PredictBinaryTests). The levels are forced with the runtime's switches:
# DOTNET_EnableAVX512 / DOTNET_EnableAVX2 / DOTNET_EnableHWIntrinsic for .NET (.NET 10 ignores the older
# DOTNET_EnableAVX512F; it is set too for older runtimes), ATEN_CPU_CAPABILITY for libtorch, ONEDNN_MAX_CPU_ISA for
# oneDNN; GRAPHCOMPILER_EXPECT_VECTOR_BITS lets a test fail if a switch did not take. Expects a Release build
# (scripts/test.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."

flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { [[ " $flags " == *" $1 "* ]]; }
if has avx512f && has avx512bw && has avx512vl && has avx512dq && has avx512cd; then
  natural=512
elif has avx2 && has fma; then
  natural=256
else
  natural=128
fi
echo "test-isa-levels: this CPU's level is ${natural}-bit vectors"

run_level() {
  local bits=$1 filter=$2
  shift 2
  echo "test-isa-levels: ${bits}-bit level ($*), tests: $filter"
  env "$@" GRAPHCOMPILER_EXPECT_VECTOR_BITS="$bits" \
    dotnet test Tests/GraphCompiler.Tests -c Release --no-build --logger "console;verbosity=minimal" --filter "$filter"
}

no512=(DOTNET_EnableAVX512=0 DOTNET_EnableAVX512F=0)
if [ "$natural" -gt 256 ]; then
  run_level 256 "Category=Kernels|Category=Models|Category=MainJob" "${no512[@]}" ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
fi
if [ "$natural" -gt 128 ]; then
  run_level 128 "Category=Kernels|Category=Models" "${no512[@]}" DOTNET_EnableAVX2=0 ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41
fi
run_level 0 "Category=Kernels|Category=Models" DOTNET_EnableHWIntrinsic=0 ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41
