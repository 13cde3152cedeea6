using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>QuantizedLinear's two element-wise ends as single passes over CPU memory (AVX-512 where available): with
/// torch ops they are 4–5 passes and as many parallel regions each, plus one for GELU and one to requantize. The
/// arithmetic is the torch path's, op for op (x / s, round half to even, clamp; (f32)acc · c, then + b), so both give
/// bit-identical results, except GELU: <see cref="VectorMath.Gelu"/> differs from libtorch's by ~1e-7 relative. The
/// torch path stays for other devices and for tensors these loops do not take.</summary>
internal static class QuantizedCpuLoops
{

    /// <summary>CPU, contiguous, and small enough for a span (the loops index by int).</summary>
    public static bool Applies(params Tensor[] tensors) =>
        tensors.All(t => t.device_type == DeviceType.CPU && t.is_contiguous() && t.numel() * t.ElementSize <= int.MaxValue);

    /// <summary>q = clamp(round(x / scale), ±127) with x f32 and q i8 of the same size.</summary>
    public static unsafe void Quantize(Tensor x, float scale, Tensor q)
    {
        var (source, target) = (TensorPointers.First(x), TensorPointers.First(q));
        CpuParallel.For(x.numel(), 64, (start, end) => QuantizeRange((float*)source, (sbyte*)target, start, end, scale));
    }

    /// <summary>y[m, n] = (f32)acc[m, n] · combined[n] (+ bias[n]), then GELU when <paramref name="gelu"/>; acc i32
    /// [M, N] and y f32 [M, N].</summary>
    public static unsafe void Dequantize(Tensor acc, Tensor combined, Tensor? bias, bool gelu, Tensor y) =>
        DequantizeRows(acc, combined, bias, gelu, TensorPointers.First(y), 0f);

    /// <summary>As <see cref="Dequantize"/>, but the result is requantized for the next GEMM in the same pass:
    /// q[m, n] = clamp(round(v / outputScale), ±127) as i8 [M, N], so the f32 values never reach memory.</summary>
    public static unsafe void DequantizeToInt8(Tensor acc, Tensor combined, Tensor? bias, bool gelu, float outputScale, Tensor q) =>
        DequantizeRows(acc, combined, bias, gelu, TensorPointers.First(q), outputScale);

    /// <summary>The row loop of both: <paramref name="outputScale"/> 0 writes f32, otherwise i8. The epilogue is a
    /// type argument so each variant compiles to its own loop with GELU inlined or absent.</summary>
    private static unsafe void DequantizeRows(Tensor acc, Tensor combined, Tensor? bias, bool gelu, nint target, float outputScale)
    {
        if (gelu)
        {
            DequantizeRows<GeluEpilogue>(acc, combined, bias, target, outputScale);
        }
        else
        {
            DequantizeRows<NoEpilogue>(acc, combined, bias, target, outputScale);
        }
    }

    private static unsafe void DequantizeRows<TEpilogue>(Tensor acc, Tensor combined, Tensor? bias, nint target, float outputScale)
        where TEpilogue : struct, IEpilogue
    {
        var (rows, columns) = (acc.shape[0], acc.shape[1]);
        var source = TensorPointers.First(acc);
        var scales = TensorPointers.First(combined);
        var offsets = bias is null ? 0 : TensorPointers.First(bias);
        CpuParallel.For(rows, 1, (start, end) =>
        {
            for (var row = start; row < end; row++)
            {
                var a = (int*)source + (row * columns);
                if (outputScale == 0)
                {
                    DequantizeRow<TEpilogue>(a, (float*)target + (row * columns), (float*)scales, (float*)offsets, columns);
                }
                else
                {
                    RequantizeRow<TEpilogue>(a, (sbyte*)target + (row * columns), (float*)scales, (float*)offsets, columns, outputScale);
                }
            }
        }, columns);
    }

    /// <summary>What follows the bias: nothing, or GELU.</summary>
    private interface IEpilogue
    {
        static abstract Vector512<float> Apply(Vector512<float> v);

        static abstract float Apply(float v);
    }

    private struct NoEpilogue : IEpilogue
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Apply(Vector512<float> v) => v;

        public static float Apply(float v) => v;
    }

    private struct GeluEpilogue : IEpilogue
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Apply(Vector512<float> v) => VectorMath.Gelu(v);

        public static float Apply(float v) => VectorMath.Gelu(v);
    }

    private static unsafe void QuantizeRange(float* x, sbyte* q, long start, long end, float scale)
    {
        var i = start;
        if (Vector512.IsHardwareAccelerated)
        {
            var s = Vector512.Create(scale);
            var (lo, hi) = (Vector512.Create(-127f), Vector512.Create(127f));
            for (; i + 64 <= end; i += 64)
            {
                var a = Vector512.ConvertToInt32(Vector512.Clamp(Vector512.Round(Vector512.Load(x + i) / s), lo, hi));
                var b = Vector512.ConvertToInt32(Vector512.Clamp(Vector512.Round(Vector512.Load(x + i + 16) / s), lo, hi));
                var c = Vector512.ConvertToInt32(Vector512.Clamp(Vector512.Round(Vector512.Load(x + i + 32) / s), lo, hi));
                var d = Vector512.ConvertToInt32(Vector512.Clamp(Vector512.Round(Vector512.Load(x + i + 48) / s), lo, hi));

                // Values are within ±127, so the truncating narrows are exact.
                Vector512.Narrow(Vector512.Narrow(a, b), Vector512.Narrow(c, d)).Store(q + i);
            }
        }

        for (; i < end; i++)
        {
            q[i] = (sbyte)Math.Clamp(MathF.Round(x[i] / scale), -127f, 127f);
        }
    }

    private static unsafe void DequantizeRow<TEpilogue>(int* acc, float* y, float* scales, float* bias, long columns)
        where TEpilogue : struct, IEpilogue
    {
        var j = 0L;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; j + 16 <= columns; j += 16)
            {
                var v = Vector512.ConvertToSingle(Vector512.Load(acc + j)) * Vector512.Load(scales + j);
                if (bias != null)
                {
                    v += Vector512.Load(bias + j);
                }

                TEpilogue.Apply(v).Store(y + j);
            }
        }

        for (; j < columns; j++)
        {
            var v = acc[j] * scales[j];
            y[j] = TEpilogue.Apply(bias != null ? v + bias[j] : v);
        }
    }

    private static unsafe void RequantizeRow<TEpilogue>(int* acc, sbyte* q, float* scales, float* bias, long columns, float outputScale)
        where TEpilogue : struct, IEpilogue
    {
        var j = 0L;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            var s = Vector512.Create(outputScale);
            var (lo, hi) = (Vector512.Create(-127f), Vector512.Create(127f));
            for (; j + 16 <= columns; j += 16)
            {
                var v = Vector512.ConvertToSingle(Vector512.Load(acc + j)) * Vector512.Load(scales + j);
                if (bias != null)
                {
                    v += Vector512.Load(bias + j);
                }

                // Clamped to ±127 first, so the truncating narrow (vpmovdb) is exact.
                var quantized = Vector512.ConvertToInt32(Vector512.Clamp(Vector512.Round(TEpilogue.Apply(v) / s), lo, hi));
                Avx512F.ConvertToVector128SByte(quantized).Store(q + j);
            }
        }

        for (; j < columns; j++)
        {
            var v = acc[j] * scales[j];
            q[j] = (sbyte)Math.Clamp(MathF.Round(TEpilogue.Apply(bias != null ? v + bias[j] : v) / outputScale), -127f, 127f);
        }
    }
}
