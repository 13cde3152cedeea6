using System.Runtime.Intrinsics.X86;

namespace GraphCompiler.Runtime;

/// <summary>What the hand-written CPU kernels run on in this process, for logs and reports: the vector width
/// (<see cref="VectorWidth"/>) and the int8 GEMM backend (<see cref="Int8Gemm"/>).</summary>
public static class CpuKernelInfo
{
    /// <summary>Bits per vector of the CPU loops: 512, 256, 128, or 0 (torch compositions only).</summary>
    public static int VectorBits => VectorWidth.Bits;

    /// <summary>E.g. "256-bit vectors (AVX2, FMA); int8 GEMM: packed int16-pair kernel (Avx2, 256-bit)".</summary>
    public static string Describe()
    {
        var features = new List<string>();
        if (Avx512F.IsSupported)
        {
            features.Add("AVX-512");
        }
        else if (Avx2.IsSupported)
        {
            features.Add("AVX2");
        }

        if (Fma.IsSupported)
        {
            features.Add("FMA");
        }

        if (AvxVnni.IsSupported)
        {
            features.Add("AVX-VNNI");
        }

        if (Int8Gemm.HasAvx512Vnni)
        {
            features.Add("AVX512-VNNI (CPUID)");
        }

        var width = VectorWidth.Bits == 0 ? "no vector acceleration" : $"{VectorWidth.Bits}-bit vectors";
        return $"{width}{(features.Count > 0 ? " (" + string.Join(", ", features) + ")" : "")}; fp32 GEMM: {FloatGemm.Describe()}; int8 GEMM: {Int8Gemm.Describe()}";
    }
}
