using GraphCompiler.Runtime;

namespace GraphCompiler.Tests.Infrastructure;

/// <summary>The vector widths the hand-written kernels are checked at, on any host: each test forces a width with
/// <see cref="VectorWidth.Force"/> (a width the CPU lacks is emulated by the runtime), and 0 is the torch composition
/// the kernels fall back to without vector acceleration. The forced-ISA runs of scripts/test.sh (runtime knobs such as
/// DOTNET_EnableAVX2=0) then check the widths the JIT itself picks, with the hardware instructions of each level.</summary>
internal static class VectorWidths
{
    public static readonly int[] Vectors = [128, 256, 512];

    public static readonly int[] WithTorch = [0, 128, 256, 512];

    /// <summary>Tags tests that scripts/test.sh runs again under each forced instruction-set level.</summary>
    public const string Category = "Category";

    public const string Kernels = "Kernels";

    /// <summary>Tags whole-model checks against outside references (ONNX Runtime, stock TorchSharp modules, autograd,
    /// finite differences) that scripts/test.sh also runs at each lower level: the kernels as the models use them.</summary>
    public const string Models = "Models";

    /// <summary>Tags the main job's demo run and the deployment binary, which scripts/test.sh also runs at the AVX2 level.</summary>
    public const string MainJob = "MainJob";
}
