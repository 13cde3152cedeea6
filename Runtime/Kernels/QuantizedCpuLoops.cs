using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>QuantizedLinear's two element-wise ends as single passes over CPU memory (AVX-512 where available): with
/// torch ops they are 4–5 passes and as many parallel regions each. The arithmetic is the torch path's, op for op
/// (x / s, round half to even, clamp; (f32)acc · c, then + b), so both give bit-identical results; the torch path
/// stays for other devices and for tensors these loops do not take.</summary>
internal static class QuantizedCpuLoops
{
    /// <summary>Below this many elements a second thread costs more than it saves.</summary>
    private const long ParallelThreshold = 1 << 16;

    /// <summary>CPU, contiguous, and small enough for a span (the loops index by int).</summary>
    public static bool Applies(params Tensor[] tensors) =>
        tensors.All(t => t.device_type == DeviceType.CPU && t.is_contiguous() && t.numel() * t.ElementSize <= int.MaxValue);

    /// <summary>q = clamp(round(x / scale), ±127) with x f32 and q i8 of the same size.</summary>
    public static unsafe void Quantize(Tensor x, float scale, Tensor q)
    {
        var source = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(x.bytes));
        var target = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(q.bytes));
        Split(x.numel(), 64, (start, end) => QuantizeRange((float*)source, (sbyte*)target, start, end, scale));
    }

    /// <summary>y[m, n] = (f32)acc[m, n] · combined[n] (+ bias[n]), acc i32 [M, N] and y f32 [M, N].</summary>
    public static unsafe void Dequantize(Tensor acc, Tensor combined, Tensor? bias, Tensor y)
    {
        var (rows, columns) = (acc.shape[0], acc.shape[1]);
        var source = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(acc.bytes));
        var target = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(y.bytes));
        var scales = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(combined.bytes));
        var offsets = bias is null ? 0 : (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(bias.bytes));
        Split(rows, 1, (start, end) =>
        {
            for (var row = start; row < end; row++)
            {
                DequantizeRow((int*)source + row * columns, (float*)target + row * columns, (float*)scales, (float*)offsets, columns);
            }
        }, columns);
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

    private static unsafe void DequantizeRow(int* acc, float* y, float* scales, float* bias, long columns)
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

                v.Store(y + j);
            }
        }

        for (; j < columns; j++)
        {
            var v = acc[j] * scales[j];
            y[j] = bias != null ? v + bias[j] : v;
        }
    }

    /// <summary>Runs <paramref name="body"/> over [0, count) in torch's thread count of pieces, each a multiple of
    /// <paramref name="align"/> long (except the last); small jobs run on the calling thread.</summary>
    private static void Split(long count, long align, Action<long, long> body, long work = 1)
    {
        var threads = Math.Max(1, get_num_threads());
        if (threads == 1 || count * work < ParallelThreshold)
        {
            body(0, count);
            return;
        }

        var piece = (count + threads - 1) / threads;
        piece = (piece + align - 1) / align * align;
        var pieces = (int)((count + piece - 1) / piece);
        Parallel.For(0, pieces, new ParallelOptions { MaxDegreeOfParallelism = threads }, p =>
            body(p * piece, Math.Min(count, (p + 1) * piece)));
    }
}
