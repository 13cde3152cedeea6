using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GraphCompiler.Runtime;

/// <summary>An 8 × 8 transpose of 32-bit lanes in AVX registers (callers check <see cref="Avx.IsSupported"/>): CpuAttention
/// turns K into Kᵀ with it, PackedInt8Gemm its widened int16 pairs into column panels. The lanes are moved as bits, so
/// floats and int32s go through the same shuffles.</summary>
internal static unsafe class Transpose8x8
{
    /// <summary>Stores the transpose of rows r0…r7 as eight rows of <paramref name="target"/>, <paramref name="stride"/>
    /// floats apart: interleave row pairs, then pairs of pairs within each 128-bit lane, then swap lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
        Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7, float* target, long stride)
    {
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7);
        var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44);
        var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44);
        var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44);
        var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44);
        var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Permute2x128(u0, u4, 0x20).Store(target);
        Avx.Permute2x128(u1, u5, 0x20).Store(target + stride);
        Avx.Permute2x128(u2, u6, 0x20).Store(target + (2 * stride));
        Avx.Permute2x128(u3, u7, 0x20).Store(target + (3 * stride));
        Avx.Permute2x128(u0, u4, 0x31).Store(target + (4 * stride));
        Avx.Permute2x128(u1, u5, 0x31).Store(target + (5 * stride));
        Avx.Permute2x128(u2, u6, 0x31).Store(target + (6 * stride));
        Avx.Permute2x128(u3, u7, 0x31).Store(target + (7 * stride));
    }
}
