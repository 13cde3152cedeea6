using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>QuantizedLinear's element-wise ends as single passes over CPU memory, at the CPU's vector width: with torch
/// ops they are 4–5 passes and as many parallel regions each, plus one for GELU and one to requantize. The arithmetic
/// is the torch path's, op for op (x / s, round half to even, clamp; (f32)acc · c, then + b), so both give
/// bit-identical results, except GELU: <see cref="VectorMath.Gelu{TV}"/> differs from libtorch's by ~1e-7 relative.
/// <see cref="PackedInt8Gemm"/> runs the same row loops inside its GEMM; the torch path stays for other devices, for
/// tensors these loops do not take, and for a runtime without vector acceleration.</summary>
internal static unsafe class QuantizedCpuLoops
{
    /// <summary>CPU, contiguous, small enough for a span (the loops index by int), and vector loops available.</summary>
    public static bool Applies(params Tensor[] tensors) =>
        VectorWidth.IsAccelerated &&
        tensors.All(t => t.device_type == DeviceType.CPU && t.is_contiguous() && t.numel() * t.ElementSize <= int.MaxValue);

    /// <summary>q = clamp(round(x / scale), ±127) with x f32 and q i8 of the same size.</summary>
    public static void Quantize(Tensor x, float scale, Tensor q)
    {
        var (source, target, bits) = (TensorPointers.First(x), TensorPointers.First(q), VectorWidth.Current);
        CpuParallel.For(x.numel(), 64, (start, end) =>
        {
            var kernel = new QuantizeKernel((float*)source + start, (sbyte*)target + start, end - start, scale);
            VectorWidth.Run(ref kernel, bits);
        });
    }

    /// <summary>y[m, n] = (f32)acc[m, n] · combined[n] (+ bias[n]), then GELU when <paramref name="gelu"/>; acc i32
    /// [M, N] and y f32 [M, N].</summary>
    public static void Dequantize(Tensor acc, Tensor combined, Tensor? bias, bool gelu, Tensor y) =>
        DequantizeRows(acc, combined, bias, gelu, TensorPointers.First(y), 0f);

    /// <summary>As <see cref="Dequantize"/>, but the result is requantized for the next GEMM in the same pass:
    /// q[m, n] = clamp(round(v / outputScale), ±127) as i8 [M, N], so the f32 values never reach memory.</summary>
    public static void DequantizeToInt8(Tensor acc, Tensor combined, Tensor? bias, bool gelu, float outputScale, Tensor q) =>
        DequantizeRows(acc, combined, bias, gelu, TensorPointers.First(q), outputScale);

    private static void DequantizeRows(Tensor acc, Tensor combined, Tensor? bias, bool gelu, nint target, float outputScale)
    {
        var (rows, columns) = (acc.shape[0], (int)acc.shape[1]);
        var epilogue = new Epilogue((float*)TensorPointers.First(combined), bias is null ? null : (float*)TensorPointers.First(bias), gelu, outputScale, target, columns);
        var (source, bits) = (TensorPointers.First(acc), VectorWidth.Current);
        CpuParallel.For(rows, 1, (start, end) =>
        {
            for (var row = start; row < end; row++)
            {
                epilogue.Row((int*)source + (row * columns), row, 0, columns, bits);
            }
        }, columns);
    }

    /// <summary>q[i] = clamp(round(x[i] / scale), ±127) for i &lt; count, into int8 or (the operand form of
    /// <see cref="PackedInt8Gemm"/>) int16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void QuantizeRange<TV, TTarget>(float* x, TTarget* q, long count, float scale)
        where TV : struct, IFloatVector<TV>
        where TTarget : unmanaged
    {
        var i = 0L;
        var (s, lo, hi) = (TV.Create(scale), TV.Create(-127f), TV.Create(127f));
        for (; i + TV.Count <= count; i += TV.Count)
        {
            var v = TV.Min(hi, TV.Max(lo, TV.Round(TV.Load(x + i) / s)));
            if (typeof(TTarget) == typeof(sbyte))
            {
                TV.StoreAsSByte(v, (sbyte*)(q + i));
            }
            else
            {
                TV.StoreAsInt16(v, (short*)(q + i));
            }
        }

        for (; i < count; i++)
        {
            var v = Math.Clamp(MathF.Round(x[i] / scale), -127f, 127f);
            if (typeof(TTarget) == typeof(sbyte))
            {
                ((sbyte*)q)[i] = (sbyte)v;
            }
            else
            {
                ((short*)q)[i] = (short)v;
            }
        }
    }

    /// <summary>What follows the bias: nothing, or GELU.</summary>
    public interface IActivation
    {
        static abstract TV Apply<TV>(TV v)
            where TV : struct, IFloatVector<TV>;

        static abstract float Apply(float v);
    }

    public struct Identity : IActivation
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Apply<TV>(TV v)
            where TV : struct, IFloatVector<TV> => v;

        public static float Apply(float v) => v;
    }

    public struct Gelu : IActivation
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Apply<TV>(TV v)
            where TV : struct, IFloatVector<TV> => VectorMath.Gelu(v);

        public static float Apply(float v) => VectorMath.Gelu(v);
    }

    /// <summary>The dequantize (+ bias, + GELU, + requantize) step applied to rows of int32 accumulators: scales and
    /// bias per output column, the result f32 (<see cref="OutputScale"/> 0) or i8 into a row-major [M, Columns] target.</summary>
    public readonly struct Epilogue(float* scales, float* bias, bool gelu, float outputScale, nint target, int columns)
    {
        public float OutputScale => outputScale;

        /// <summary>Columns [column, column + count) of output row <paramref name="row"/> from <paramref name="acc"/>.</summary>
        public void Row(int* acc, long row, int column, int count, int bits)
        {
            var offset = (row * columns) + column;
            var kernel = new RowKernel(acc, scales + column, bias == null ? null : bias + column, gelu, outputScale, target, offset, count);
            VectorWidth.Run(ref kernel, bits);
        }
    }

    private readonly struct RowKernel(int* acc, float* scales, float* bias, bool gelu, float outputScale, nint target, long offset, int count) : IVectorKernel
    {
        public void Run<TV>()
            where TV : struct, IFloatVector<TV>
        {
            switch ((gelu, outputScale == 0))
            {
                case (true, true):
                    DequantizeRow<TV, Gelu>(acc, (float*)target + offset, scales, bias, count);
                    break;
                case (false, true):
                    DequantizeRow<TV, Identity>(acc, (float*)target + offset, scales, bias, count);
                    break;
                case (true, false):
                    RequantizeRow<TV, Gelu>(acc, (sbyte*)target + offset, scales, bias, count, outputScale);
                    break;
                default:
                    RequantizeRow<TV, Identity>(acc, (sbyte*)target + offset, scales, bias, count, outputScale);
                    break;
            }
        }
    }

    private readonly struct QuantizeKernel(float* x, sbyte* q, long count, float scale) : IVectorKernel
    {
        public void Run<TV>()
            where TV : struct, IFloatVector<TV> => QuantizeRange<TV, sbyte>(x, q, count, scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DequantizeRow<TV, TAct>(int* acc, float* y, float* scales, float* bias, int columns)
        where TV : struct, IFloatVector<TV>
        where TAct : struct, IActivation
    {
        var j = 0;
        for (; j + TV.Count <= columns; j += TV.Count)
        {
            var v = TV.LoadInt32AsSingle(acc + j) * TV.Load(scales + j);
            if (bias != null)
            {
                v += TV.Load(bias + j);
            }

            TV.Store(TAct.Apply(v), y + j);
        }

        for (; j < columns; j++)
        {
            var v = acc[j] * scales[j];
            y[j] = TAct.Apply(bias != null ? v + bias[j] : v);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RequantizeRow<TV, TAct>(int* acc, sbyte* q, float* scales, float* bias, int columns, float outputScale)
        where TV : struct, IFloatVector<TV>
        where TAct : struct, IActivation
    {
        var j = 0;
        var (s, lo, hi) = (TV.Create(outputScale), TV.Create(-127f), TV.Create(127f));
        for (; j + TV.Count <= columns; j += TV.Count)
        {
            var v = TV.LoadInt32AsSingle(acc + j) * TV.Load(scales + j);
            if (bias != null)
            {
                v += TV.Load(bias + j);
            }

            TV.StoreAsSByte(TV.Min(hi, TV.Max(lo, TV.Round(TAct.Apply(v) / s))), q + j);
        }

        for (; j < columns; j++)
        {
            var v = acc[j] * scales[j];
            q[j] = (sbyte)Math.Clamp(MathF.Round(TAct.Apply(bias != null ? v + bias[j] : v) / outputScale), -127f, 127f);
        }
    }
}
