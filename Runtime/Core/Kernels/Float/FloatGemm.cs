using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>Where an inference fp32 linear layer computes its product on the CPU.</summary>
public enum FloatGemmBackend
{
    /// <summary>libtorch's <c>linear</c> (MKL's sgemm).</summary>
    Torch,

    /// <summary><see cref="PackedFloatGemm"/>, the project's own kernel, with bias and GELU fused into it.</summary>
    Packed,
}

/// <summary>Chooses the fp32 GEMM of inference linear layers. MKL (libtorch's sgemm) dispatches its AVX-512 kernels on
/// Intel CPUs only; on an AMD CPU with AVX-512 (Zen 4, Zen 5) it runs AVX2 code, and there the packed kernel at 512 bits
/// is faster. Everywhere else MKL stays. <c>GRAPHCOMPILER_FP32_GEMM=torch|packed</c> overrides the choice (benchmarks
/// and tests compare them that way). Training and autograd always take libtorch's linear.</summary>
public static class FloatGemm
{
    private static readonly FloatGemmBackend? Forced = Environment.GetEnvironmentVariable("GRAPHCOMPILER_FP32_GEMM")?.ToLowerInvariant() switch
    {
        null or "" => null,
        "torch" => FloatGemmBackend.Torch,
        "packed" => FloatGemmBackend.Packed,
        var other => throw new InvalidOperationException($"GRAPHCOMPILER_FP32_GEMM='{other}': expected torch or packed"),
    };

    /// <summary>Whether CPUID's vendor is "GenuineIntel" (the CPUs MKL gives its AVX-512 kernels).</summary>
    public static bool IsIntel { get; } = X86Base.IsSupported && VendorIsIntel();

    /// <summary>The backend for products run from this thread (see <see cref="VectorWidth.Current"/>).</summary>
    public static FloatGemmBackend Backend => Choose(VectorWidth.Current);

    /// <summary>In words, for logs and benchmark reports.</summary>
    public static string Describe() => Backend == FloatGemmBackend.Packed
        ? $"packed kernel ({VectorWidth.Current}-bit{(Forced is null ? "" : ", forced")})"
        : $"libtorch linear (MKL){(Forced is null ? "" : ", forced")}";

    internal static FloatGemmBackend Choose(int bits) =>
        Forced is { } forced ? (bits == 0 ? FloatGemmBackend.Torch : forced)
        : bits == 512 && !IsIntel ? FloatGemmBackend.Packed
        : FloatGemmBackend.Torch;

    /// <summary>x·Wᵀ + b (then GELU) on the packed kernel, or null when it does not take these tensors (another
    /// backend chosen, not CPU float32, a view it cannot walk, gradients needed) and the caller runs libtorch's.</summary>
    public static unsafe Tensor? TryLinear(Tensor x, Tensor weight, Tensor? bias, bool gelu)
    {
        var bits = VectorWidth.Current;
        if (Choose(bits) != FloatGemmBackend.Packed || is_grad_enabled() && (x.requires_grad || weight.requires_grad || bias is { requires_grad: true }))
        {
            return null;
        }

        if (x.device_type != DeviceType.CPU || x.dtype != ScalarType.Float32 || weight.dtype != ScalarType.Float32 || weight.device_type != DeviceType.CPU
            || weight.dim() != 2 || !weight.is_contiguous() || x.dim() < 1 || !x.is_contiguous()
            || bias is not null && (bias.dtype != ScalarType.Float32 || bias.device_type != DeviceType.CPU || bias.dim() != 1 || !bias.is_contiguous() || bias.shape[0] != weight.shape[0]))
        {
            return null;
        }

        var (n, k) = (weight.shape[0], weight.shape[1]);
        if (x.shape[^1] != k)
        {
            return null; // libtorch's linear gives its own shape error
        }

        var m = x.numel() / Math.Max(1, k);
        if (!PackedFloatGemm.Fits(m, n, k) || k == 0)
        {
            return null;
        }

        var shape = x.shape.ToArray();
        shape[^1] = n;
        var y = empty(shape, ScalarType.Float32, x.device);
        PackedFloatGemm.Run(bits, (float*)TensorPointers.First(x), k, (float*)TensorPointers.First(weight), k,
            bias is null ? null : (float*)TensorPointers.First(bias), (float*)TensorPointers.First(y), (int)m, (int)n, (int)k, gelu);
        return y;
    }

    private static bool VendorIsIntel()
    {
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        return ebx == 0x756E6547 && edx == 0x49656E69 && ecx == 0x6C65746E; // "Genu" "ineI" "ntel"
    }
}
