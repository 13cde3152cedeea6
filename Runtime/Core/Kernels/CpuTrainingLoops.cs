using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>Training's element-wise and row-wise kernels as single passes over CPU memory, at the CPU's vector width
/// (<see cref="VectorWidth"/>): the GELU, LayerNorm and softmax gradients of generated backward code, the masked
/// softmax, GELU and dropout masks of its forward, and the AdamW update. Composed from torch ops each is 3–15 passes
/// with as many temporaries (LayerNorm's backward recomputes mean and rstd, GELU's builds erf and exp separately,
/// bernoulli draws one element at a time); on MiniLM at 32×64 these kernels took the training step from about 1,150
/// to about 850 ms (AVX-512). Rows (LayerNorm's features, softmax's keys) stay in L1 while a kernel works on them. Each
/// body is written once over <see cref="IFloatVector{TSelf}"/> and marked AggressiveOptimization: it runs a few times
/// per step, and tiered compilation would start it as unoptimised code that calls the vector helpers without inlining.
/// The torch compositions in <see cref="Kernels"/> remain for other devices, dtypes (the float64 gradient checks),
/// layouts, and runtimes without vector acceleration.</summary>
public static unsafe class CpuTrainingLoops
{
    private const float InvSqrt2 = 0.70710678118654752f;
    private const float InvSqrt2Pi = 0.39894228040143268f;

    /// <summary>CPU float32, contiguous, vector loops available, rows a whole number of vectors at this width (the row
    /// kernels have no tail loop).</summary>
    public static bool Applies(long rowLength, params Tensor[] tensors) =>
        VectorWidth.IsAccelerated && rowLength % VectorWidth.FloatLanes(VectorWidth.Current) == 0 &&
        tensors.All(t => t.device_type == DeviceType.CPU && t.dtype == ScalarType.Float32 && t.is_contiguous());

    /// <summary><see cref="Applies"/> for the element-wise kernels, which have a tail loop.</summary>
    public static bool AppliesElementwise(params Tensor[] tensors) => Applies(VectorWidth.FloatLanes(VectorWidth.Current), tensors);

    /// <summary>An inverted-dropout mask like <paramref name="like"/>: 0 with probability p, 1/(1−p) otherwise. The bits
    /// are a counter-based hash (two rounds of murmur3's finalizer) of each element's index under a 64-bit key drawn from
    /// torch's generator, so a seeded run repeats exactly, at any vector width, without libtorch's bernoulli (three
    /// passes, one of them a slow per-element draw).</summary>
    public static Tensor DropoutMask(Tensor like, double p)
    {
        var mask = empty_like(like);
        using var drawn = randint(long.MinValue, long.MaxValue, new long[] { 1 }, ScalarType.Int64);
        var key = (ulong)drawn.item<long>();
        var threshold = (uint)Math.Min(uint.MaxValue, Math.Round(p * 4294967296.0));
        var kept = (float)(1 / (1 - p));
        var (target, bits) = (TensorPointers.First(mask), VectorWidth.Current);
        CpuParallel.For(mask.numel(), 16, (start, end) =>
        {
            var kernel = new DropoutKernel((float*)target, start, end, (uint)key, (uint)(key >> 32), threshold, kept);
            VectorWidth.Run(ref kernel, bits);
        }, work: 4);
        return mask;
    }

    /// <summary>One AdamW update of a parameter in a single pass over p, g, m and v (torch's AdamW is ten passes and two
    /// temporaries per parameter), in torch's order of operations: p·(1 − lr·wd); m = β₁m + (1−β₁)g;
    /// v = β₂v + (1−β₂)g²; p −= (lr / bc₁)·m / (√v / √bc₂ + ε).</summary>
    public static void AdamWStep(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, double lr, double beta1, double beta2, double eps, double weightDecay, long step)
    {
        var update = new AdamWUpdate(
            (float)(1 - (lr * weightDecay)), (float)beta1, (float)beta2, (float)eps,
            (float)(lr / (1 - Math.Pow(beta1, step))), (float)Math.Sqrt(1 - Math.Pow(beta2, step)));
        var (pp, gp, mp, vp, bits) = (TensorPointers.First(param), TensorPointers.First(grad), TensorPointers.First(expAvg), TensorPointers.First(expAvgSq), VectorWidth.Current);
        CpuParallel.For(param.numel(), 16, (start, end) =>
        {
            var kernel = new AdamWKernel(update, (float*)pp + start, (float*)gp + start, (float*)mp + start, (float*)vp + start, end - start);
            VectorWidth.Run(ref kernel, bits);
        }, work: 6);
    }

    /// <summary>GELU (erf form) element-wise, as the int8 GEMM's epilogue computes it.</summary>
    public static Tensor Gelu(Tensor x)
    {
        var y = empty_like(x);
        var (source, target, bits) = (TensorPointers.First(x), TensorPointers.First(y), VectorWidth.Current);
        CpuParallel.For(x.numel(), 16, (start, end) =>
        {
            var kernel = new ElementwiseKernel(Elementwise.Gelu, (float*)source + start, null, (float*)target + start, end - start);
            VectorWidth.Run(ref kernel, bits);
        }, work: 6);
        return y;
    }

    /// <summary>dy·(Φ(x) + x·φ(x)): GELU's derivative (erf form) times the incoming gradient. Φ is
    /// <see cref="VectorMath"/>'s erfc (absolute error ≤ 1.5e-7) and φ reuses its e^(−x²/2).</summary>
    public static Tensor GeluGrad(Tensor dy, Tensor x)
    {
        var dx = empty_like(x);
        var (gradient, source, target, bits) = (TensorPointers.First(dy), TensorPointers.First(x), TensorPointers.First(dx), VectorWidth.Current);
        CpuParallel.For(x.numel(), 16, (start, end) =>
        {
            var kernel = new ElementwiseKernel(Elementwise.GeluGrad, (float*)source + start, (float*)gradient + start, (float*)target + start, end - start);
            VectorWidth.Run(ref kernel, bits);
        }, work: 8);
        return dx;
    }

    /// <summary>x [B, H, Sq, Sk] with a per-batch key mask [B, 1, 1, Sk] (what LengthMask gives attention).</summary>
    public static bool AppliesMaskedSoftmax(Tensor x, Tensor mask) =>
        x.dim() == 4 && mask.dim() == 4 && mask.shape[0] == x.shape[0] && mask.shape[1] == 1 && mask.shape[2] == 1 &&
        mask.shape[3] == x.shape[3] && Applies(x.shape[3], x, mask);

    /// <summary>softmax(x + mask) over the last dimension in one pass per row: max, then e^(v − max) summed in place,
    /// then scaled by 1/sum. Masked keys (the mask's lowest value) come out as exactly 0.</summary>
    public static Tensor MaskedSoftmax(Tensor x, Tensor mask)
    {
        var y = empty_like(x);
        var (rowsPerBatch, n) = (x.shape[1] * x.shape[2], x.shape[3]);
        var rows = new RowOperands(TensorPointers.First(x), TensorPointers.First(mask), 0, TensorPointers.First(y), n);
        RunRows(RowOperation.MaskedSoftmax, rows, x.numel() / n, rowsPerBatch, 0, work: n * 8);
        return y;
    }

    /// <summary>scale·y·(g − Σ g·y) with g = dy (∘ gate when given) over the last dimension: softmax's backward from its
    /// saved output, with attention's dropout mask and score scale folded in.</summary>
    public static Tensor SoftmaxGrad(Tensor dy, Tensor y, Tensor? gate, float scale)
    {
        var dx = empty_like(y);
        var n = y.shape[^1];
        var rows = new RowOperands(TensorPointers.First(dy), TensorPointers.First(y), gate is null ? 0 : TensorPointers.First(gate), TensorPointers.First(dx), n);
        RunRows(RowOperation.SoftmaxGrad, rows, y.numel() / n, 1, scale, work: n * 3);
        return dx;
    }

    /// <summary>LayerNorm's input gradient, mean and rstd recomputed per row from the saved input:
    /// rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·weight.</summary>
    public static Tensor LayerNormInputGrad(Tensor dy, Tensor x, Tensor weight, double eps)
    {
        var dx = empty_like(x);
        var n = x.shape[^1];
        var rows = new RowOperands(TensorPointers.First(dy), TensorPointers.First(x), TensorPointers.First(weight), TensorPointers.First(dx), n);
        RunRows(RowOperation.LayerNormInputGrad, rows, x.numel() / n, 1, 0, work: n * 4, epsilon: eps);
        return dx;
    }

    /// <summary>LayerNorm's gain gradient Σ over rows of dy·x̂: each chunk of rows sums into its own row of float32
    /// partials, added at the end (a different order from torch's reduction, so the last bits differ).</summary>
    public static Tensor LayerNormWeightGrad(Tensor dy, Tensor x, double eps)
    {
        var n = x.shape[^1];
        var rowCount = x.numel() / n;
        var chunks = Math.Max(1, Math.Min(rowCount, get_num_threads() * 4));
        var chunkRows = (rowCount + chunks - 1) / chunks;
        using var partials = zeros(new[] { chunks, n }, ScalarType.Float32);
        var rows = new RowOperands(TensorPointers.First(dy), TensorPointers.First(x), 0, TensorPointers.First(partials), n);
        var bits = VectorWidth.Current;
        CpuParallel.For(chunks, 1, (startChunk, endChunk) =>
        {
            for (var chunk = startChunk; chunk < endChunk; chunk++)
            {
                var kernel = new RowKernel(RowOperation.LayerNormWeightGrad, rows, chunk * chunkRows, Math.Min(rowCount, (chunk + 1) * chunkRows), 1, 0, eps, chunk);
                VectorWidth.Run(ref kernel, bits);
            }
        }, work: chunkRows * n * 3);
        return partials.sum(new long[] { 0 });
    }

    private static void RunRows(RowOperation operation, RowOperands rows, long count, long rowsPerBatch, float scalar, long work, double epsilon = 0)
    {
        var bits = VectorWidth.Current;
        CpuParallel.For(count, 1, (start, end) =>
        {
            var kernel = new RowKernel(operation, rows, start, end, rowsPerBatch, scalar, epsilon, 0);
            VectorWidth.Run(ref kernel, bits);
        }, work);
    }

    private enum Elementwise
    {
        Gelu,
        GeluGrad,
    }

    private enum RowOperation
    {
        MaskedSoftmax,
        SoftmaxGrad,
        LayerNormInputGrad,
        LayerNormWeightGrad,
    }

    /// <summary>A row kernel's tensors: two inputs, an optional third (mask, gate or gain), the output, row length.</summary>
    private readonly record struct RowOperands(nint First, nint Second, nint Third, nint Output, long Length);

    private readonly record struct AdamWUpdate(float Decay, float Beta1, float Beta2, float Eps, float StepSize, float SqrtBc2);

    private readonly struct DropoutKernel(float* output, long start, long end, uint low, uint high, uint threshold, float kept) : IVectorKernel
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run<TV>()
            where TV : struct, IFloatVector<TV>
        {
            var i = start;
            for (; i + TV.Count <= end; i += TV.Count)
            {
                var bits = Mix(Mix(TV.UIntSequence((uint)i) ^ TV.UIntCreate(low)) ^ TV.UIntCreate(high));
                TV.Store(TV.UIntGreaterThanOrEqual(bits, TV.UIntCreate(threshold)) & TV.Create(kept), output + i);
            }

            for (; i < end; i++)
            {
                output[i] = Mix(Mix((uint)i ^ low) ^ high) >= threshold ? kept : 0f;
            }
        }
    }

    private readonly struct AdamWKernel(AdamWUpdate u, float* p, float* g, float* m, float* v, long count) : IVectorKernel
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run<TV>()
            where TV : struct, IFloatVector<TV>
        {
            var i = 0L;
            for (; i + TV.Count <= count; i += TV.Count)
            {
                var gi = TV.Load(g + i);
                var mi = (TV.Load(m + i) * TV.Create(u.Beta1)) + (gi * TV.Create(1 - u.Beta1));
                var vi = (TV.Load(v + i) * TV.Create(u.Beta2)) + (gi * gi * TV.Create(1 - u.Beta2));
                var denominator = (TV.Sqrt(vi) / TV.Create(u.SqrtBc2)) + TV.Create(u.Eps);
                var pi = TV.Load(p + i) * TV.Create(u.Decay);
                TV.Store(mi, m + i);
                TV.Store(vi, v + i);
                TV.Store(pi - (TV.Create(u.StepSize) * (mi / denominator)), p + i);
            }

            for (; i < count; i++)
            {
                var mi = (m[i] * u.Beta1) + (g[i] * (1 - u.Beta1));
                var vi = (v[i] * u.Beta2) + (g[i] * g[i] * (1 - u.Beta2));
                (m[i], v[i]) = (mi, vi);
                p[i] = (p[i] * u.Decay) - (u.StepSize * (mi / ((MathF.Sqrt(vi) / u.SqrtBc2) + u.Eps)));
            }
        }
    }

    private readonly struct ElementwiseKernel(Elementwise operation, float* x, float* dy, float* output, long count) : IVectorKernel
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run<TV>()
            where TV : struct, IFloatVector<TV>
        {
            var i = 0L;
            if (operation == Elementwise.Gelu)
            {
                for (; i + TV.Count <= count; i += TV.Count)
                {
                    TV.Store(VectorMath.Gelu(TV.Load(x + i)), output + i);
                }

                for (; i < count; i++)
                {
                    output[i] = VectorMath.Gelu(x[i]);
                }

                return;
            }

            for (; i + TV.Count <= count; i += TV.Count)
            {
                TV.Store(TV.Load(dy + i) * GeluSlope(TV.Load(x + i)), output + i);
            }

            for (; i < count; i++)
            {
                output[i] = dy[i] * GeluSlope(x[i]);
            }
        }
    }

    private readonly struct RowKernel(RowOperation operation, RowOperands rows, long start, long end, long rowsPerBatch, float scalar, double eps, long chunk) : IVectorKernel
    {
        public void Run<TV>()
            where TV : struct, IFloatVector<TV>
        {
            var n = rows.Length;
            switch (operation)
            {
                case RowOperation.MaskedSoftmax:
                    for (var row = start; row < end; row++)
                    {
                        MaskedSoftmaxRow<TV>((float*)rows.First + (row * n), (float*)rows.Second + (row / rowsPerBatch * n), (float*)rows.Output + (row * n), n);
                    }

                    break;
                case RowOperation.SoftmaxGrad:
                    for (var row = start; row < end; row++)
                    {
                        var gate = rows.Third == 0 ? null : (float*)rows.Third + (row * n);
                        SoftmaxGradRow<TV>((float*)rows.First + (row * n), (float*)rows.Second + (row * n), gate, (float*)rows.Output + (row * n), n, scalar);
                    }

                    break;
                case RowOperation.LayerNormInputGrad:
                    for (var row = start; row < end; row++)
                    {
                        LayerNormInputGradRow<TV>((float*)rows.First + (row * n), (float*)rows.Second + (row * n), (float*)rows.Third, (float*)rows.Output + (row * n), n, eps);
                    }

                    break;
                default:
                    for (var row = start; row < end; row++)
                    {
                        LayerNormWeightGradRow<TV>((float*)rows.First + (row * n), (float*)rows.Second + (row * n), (float*)rows.Output + (chunk * n), n, eps);
                    }

                    break;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MaskedSoftmaxRow<TV>(float* x, float* mask, float* output, long n)
        where TV : struct, IFloatVector<TV>
    {
        var max = TV.Create(float.MinValue);
        for (long j = 0; j < n; j += TV.Count)
        {
            max = TV.Max(max, TV.Load(x + j) + TV.Load(mask + j));
        }

        var top = TV.Create(TV.MaxAcross(max));
        var sum = TV.Zero;
        for (long j = 0; j < n; j += TV.Count)
        {
            // exp's floor is the smallest normal float, not 0: masked keys are set to 0 exactly.
            var v = TV.Load(x + j) + TV.Load(mask + j) - top;
            var e = TV.Select(TV.GreaterThan(v, TV.Create(-87f)), VectorMath.Exp(v), TV.Zero);
            sum += e;
            TV.Store(e, output + j);
        }

        var inverse = TV.Create(1 / TV.Sum(sum));
        for (long j = 0; j < n; j += TV.Count)
        {
            TV.Store(TV.Load(output + j) * inverse, output + j);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SoftmaxGradRow<TV>(float* dy, float* y, float* gate, float* output, long n, float scale)
        where TV : struct, IFloatVector<TV>
    {
        var dot = TV.Zero;
        for (long j = 0; j < n; j += TV.Count)
        {
            var g = gate == null ? TV.Load(dy + j) : TV.Load(dy + j) * TV.Load(gate + j);
            dot = TV.MultiplyAdd(g, TV.Load(y + j), dot);
        }

        var (sum, s) = (TV.Create(TV.Sum(dot)), TV.Create(scale));
        for (long j = 0; j < n; j += TV.Count)
        {
            var g = gate == null ? TV.Load(dy + j) : TV.Load(dy + j) * TV.Load(gate + j);
            TV.Store((g - sum) * TV.Load(y + j) * s, output + j);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LayerNormInputGradRow<TV>(float* dy, float* x, float* gain, float* output, long n, double eps)
        where TV : struct, IFloatVector<TV>
    {
        var (mean, rstd) = Moments<TV>(x, n, eps);
        var (sumG, sumGXhat) = (TV.Zero, TV.Zero);
        for (long j = 0; j < n; j += TV.Count)
        {
            var gj = TV.Load(dy + j) * TV.Load(gain + j);
            sumG += gj;
            sumGXhat = TV.MultiplyAdd(gj, (TV.Load(x + j) - mean) * rstd, sumGXhat);
        }

        var meanG = TV.Create(TV.Sum(sumG) / n);
        var meanGXhat = TV.Create(TV.Sum(sumGXhat) / n);
        for (long j = 0; j < n; j += TV.Count)
        {
            var gj = TV.Load(dy + j) * TV.Load(gain + j);
            var xhat = (TV.Load(x + j) - mean) * rstd;
            TV.Store((gj - meanG - (xhat * meanGXhat)) * rstd, output + j);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LayerNormWeightGradRow<TV>(float* dy, float* x, float* acc, long n, double eps)
        where TV : struct, IFloatVector<TV>
    {
        var (mean, rstd) = Moments<TV>(x, n, eps);
        for (long j = 0; j < n; j += TV.Count)
        {
            var xhat = (TV.Load(x + j) - mean) * rstd;
            TV.Store(TV.MultiplyAdd(TV.Load(dy + j), xhat, TV.Load(acc + j)), acc + j);
        }
    }

    /// <summary>A row's mean and 1/√(variance + eps), two passes (the row is in L1), broadcast to vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (TV Mean, TV Rstd) Moments<TV>(float* row, long n, double eps)
        where TV : struct, IFloatVector<TV>
    {
        var sum = TV.Zero;
        for (long j = 0; j < n; j += TV.Count)
        {
            sum += TV.Load(row + j);
        }

        var mean = TV.Create(TV.Sum(sum) / n);
        var squares = TV.Zero;
        for (long j = 0; j < n; j += TV.Count)
        {
            var centered = TV.Load(row + j) - mean;
            squares = TV.MultiplyAdd(centered, centered, squares);
        }

        return (mean, TV.Create((float)(1 / Math.Sqrt((TV.Sum(squares) / n) + eps))));
    }

    /// <summary>murmur3's 32-bit finalizer on each lane's bits: every input bit flips each output bit with probability
    /// about ½.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Mix<TV>(TV x)
        where TV : struct, IFloatVector<TV>
    {
        x ^= TV.UIntShiftRight(x, 16);
        x = TV.UIntMultiply(x, 0x85EBCA6Bu);
        x ^= TV.UIntShiftRight(x, 13);
        x = TV.UIntMultiply(x, 0xC2B2AE35u);
        return x ^ TV.UIntShiftRight(x, 16);
    }

    private static uint Mix(uint x)
    {
        x ^= x >> 16;
        x *= 0x85EBCA6Bu;
        x ^= x >> 13;
        x *= 0xC2B2AE35u;
        return x ^ (x >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV GeluSlope<TV>(TV x)
        where TV : struct, IFloatVector<TV>
    {
        var (erfc, gaussian) = VectorMath.ErfcAndGaussian(TV.Abs(x) * TV.Create(InvSqrt2));
        var half = TV.Create(0.5f) * erfc;
        var cdf = TV.Select(TV.GreaterThanOrEqual(x, TV.Zero), TV.Create(1f) - half, half);
        return TV.MultiplyAdd(x * TV.Create(InvSqrt2Pi), gaussian, cdf);
    }

    private static float GeluSlope(float x)
    {
        var (erfc, gaussian) = VectorMath.ErfcAndGaussian(MathF.Abs(x) * InvSqrt2);
        var cdf = x >= 0 ? 1 - (0.5f * erfc) : 0.5f * erfc;
        return ScalarMath.MultiplyAdd(x * InvSqrt2Pi, gaussian, cdf);
    }
}
