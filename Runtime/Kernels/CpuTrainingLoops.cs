using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>Training's element-wise and row-wise kernels as single AVX-512 passes over CPU memory: the GELU, LayerNorm
/// and softmax gradients of generated backward code, the masked softmax, GELU and dropout masks of its forward, and the
/// AdamW update. Composed from torch ops each is 3–15 passes with as many temporaries (LayerNorm's backward recomputes
/// mean and rstd, GELU's builds erf and exp separately, bernoulli draws one element at a time); on MiniLM at 32×64
/// these kernels took the training step from about 1,150 to about 850 ms. Rows (LayerNorm's features, softmax's keys)
/// stay in L1 while a kernel works on them. The loop bodies are AggressiveOptimization: each runs a few times per step,
/// and tiered compilation would start them as unoptimised code that calls the vector helpers without inlining. The
/// torch compositions in <see cref="Kernels"/> remain for other devices, dtypes (the float64 gradient checks) and
/// layouts.</summary>
internal static unsafe class CpuTrainingLoops
{
    private const float InvSqrt2 = 0.70710678118654752f;
    private const float InvSqrt2Pi = 0.39894228040143268f;

    /// <summary>CPU float32, contiguous, rows a whole number of vectors (the row kernels have no tail loop).</summary>
    public static bool Applies(long rowLength, params Tensor[] tensors) =>
        Avx512F.IsSupported && rowLength % Vector512<float>.Count == 0 &&
        tensors.All(t => t.device_type == DeviceType.CPU && t.dtype == ScalarType.Float32 && t.is_contiguous());

    /// <summary><see cref="Applies"/> for the element-wise kernels, which have a tail loop.</summary>
    public static bool AppliesElementwise(params Tensor[] tensors) => Applies(Vector512<float>.Count, tensors);

    /// <summary>An inverted-dropout mask like <paramref name="like"/>: 0 with probability p, 1/(1−p) otherwise. The bits
    /// are a counter-based hash (two rounds of murmur3's finalizer) of each element's index under a 64-bit key drawn from
    /// torch's generator, so a seeded run repeats exactly, without libtorch's bernoulli (three passes, one of them a
    /// slow per-element draw).</summary>
    public static Tensor DropoutMask(Tensor like, double p)
    {
        var mask = empty_like(like);
        using var drawn = randint(long.MinValue, long.MaxValue, new long[] { 1 }, ScalarType.Int64);
        var key = (ulong)drawn.item<long>();
        var (low, high) = ((uint)key, (uint)(key >> 32));
        var threshold = (uint)Math.Min(uint.MaxValue, Math.Round(p * 4294967296.0));
        var kept = (float)(1 / (1 - p));
        var target = TensorPointers.First(mask);
        CpuParallel.For(mask.numel(), Vector512<float>.Count, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            var output = (float*)target;
            var lanes = Vector512.Create(0u, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            var i = start;
            for (; i + Vector512<float>.Count <= end; i += Vector512<float>.Count)
            {
                var bits = Mix(Mix((Vector512.Create((uint)i) + lanes) ^ Vector512.Create(low)) ^ Vector512.Create(high));
                var keep = Vector512.GreaterThanOrEqual(bits, Vector512.Create(threshold)).AsSingle();
                Vector512.Store(keep & Vector512.Create(kept), output + i);
            }

            for (; i < end; i++)
            {
                output[i] = Mix(Mix((uint)i ^ low) ^ high) >= threshold ? kept : 0f;
            }
        }, work: 4);
        return mask;
    }

    /// <summary>One AdamW update of a parameter in a single pass over p, g, m and v (torch's AdamW is ten passes and two
    /// temporaries per parameter), in torch's order of operations: p·(1 − lr·wd); m = β₁m + (1−β₁)g;
    /// v = β₂v + (1−β₂)g²; p −= (lr / bc₁)·m / (√v / √bc₂ + ε).</summary>
    public static void AdamWStep(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, double lr, double beta1, double beta2, double eps, double weightDecay, long step)
    {
        var (decay, b1, b2, eps32) = ((float)(1 - lr * weightDecay), (float)beta1, (float)beta2, (float)eps);
        var stepSize = (float)(lr / (1 - Math.Pow(beta1, step)));
        var sqrtBc2 = (float)Math.Sqrt(1 - Math.Pow(beta2, step));
        var (pp, gp, mp, vp) = (TensorPointers.First(param), TensorPointers.First(grad), TensorPointers.First(expAvg), TensorPointers.First(expAvgSq));
        CpuParallel.For(param.numel(), Vector512<float>.Count, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            float* p = (float*)pp, g = (float*)gp, m = (float*)mp, v = (float*)vp;
            var i = start;
            for (; i + Vector512<float>.Count <= end; i += Vector512<float>.Count)
            {
                var gi = Vector512.Load(g + i);
                var mi = Vector512.Load(m + i) * Vector512.Create(b1) + gi * Vector512.Create(1 - b1);
                var vi = Vector512.Load(v + i) * Vector512.Create(b2) + gi * gi * Vector512.Create(1 - b2);
                var denominator = Vector512.Sqrt(vi) / Vector512.Create(sqrtBc2) + Vector512.Create(eps32);
                var pi = Vector512.Load(p + i) * Vector512.Create(decay);
                Vector512.Store(mi, m + i);
                Vector512.Store(vi, v + i);
                Vector512.Store(pi - Vector512.Create(stepSize) * (mi / denominator), p + i);
            }

            for (; i < end; i++)
            {
                var mi = m[i] * b1 + g[i] * (1 - b1);
                var vi = v[i] * b2 + g[i] * g[i] * (1 - b2);
                (m[i], v[i]) = (mi, vi);
                p[i] = p[i] * decay - stepSize * (mi / (MathF.Sqrt(vi) / sqrtBc2 + eps32));
            }
        }, work: 6);
    }

    /// <summary>murmur3's 32-bit finalizer: every input bit flips each output bit with probability about ½.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Mix(Vector512<uint> x)
    {
        x ^= Vector512.ShiftRightLogical(x, 16);
        x *= Vector512.Create(0x85EBCA6Bu);
        x ^= Vector512.ShiftRightLogical(x, 13);
        x *= Vector512.Create(0xC2B2AE35u);
        return x ^ Vector512.ShiftRightLogical(x, 16);
    }

    private static uint Mix(uint x)
    {
        x ^= x >> 16;
        x *= 0x85EBCA6Bu;
        x ^= x >> 13;
        x *= 0xC2B2AE35u;
        return x ^ (x >> 16);
    }

    /// <summary>GELU (erf form) element-wise, as the int8 GEMM's epilogue computes it.</summary>
    public static Tensor Gelu(Tensor x)
    {
        var y = empty_like(x);
        var (source, target) = (TensorPointers.First(x), TensorPointers.First(y));
        CpuParallel.For(x.numel(), Vector512<float>.Count, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            float* input = (float*)source, output = (float*)target;
            var i = start;
            for (; i + Vector512<float>.Count <= end; i += Vector512<float>.Count)
            {
                Vector512.Store(VectorMath.Gelu(Vector512.Load(input + i)), output + i);
            }

            for (; i < end; i++)
            {
                output[i] = VectorMath.Gelu(input[i]);
            }
        }, work: 6);
        return y;
    }

    /// <summary>dy·(Φ(x) + x·φ(x)): GELU's derivative (erf form) times the incoming gradient. Φ is
    /// <see cref="VectorMath"/>'s erfc (absolute error ≤ 1.5e-7) and φ reuses its e^(−x²/2).</summary>
    public static Tensor GeluGrad(Tensor dy, Tensor x)
    {
        var dx = empty_like(x);
        var (gradient, source, target) = (TensorPointers.First(dy), TensorPointers.First(x), TensorPointers.First(dx));
        CpuParallel.For(x.numel(), Vector512<float>.Count, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            float* g = (float*)gradient, input = (float*)source, output = (float*)target;
            var i = start;
            for (; i + Vector512<float>.Count <= end; i += Vector512<float>.Count)
            {
                Vector512.Store(Vector512.Load(g + i) * GeluSlope(Vector512.Load(input + i)), output + i);
            }

            for (; i < end; i++)
            {
                output[i] = g[i] * GeluSlope(input[i]);
            }
        }, work: 8);
        return dx;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> GeluSlope(Vector512<float> x)
    {
        var (erfc, gaussian) = VectorMath.ErfcAndGaussian(Vector512.Abs(x) * Vector512.Create(InvSqrt2));
        var cdf = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, Vector512<float>.Zero), Vector512<float>.One - Vector512.Create(0.5f) * erfc, Vector512.Create(0.5f) * erfc);
        return Vector512.FusedMultiplyAdd(x * Vector512.Create(InvSqrt2Pi), gaussian, cdf);
    }

    private static float GeluSlope(float x)
    {
        var (erfc, gaussian) = VectorMath.ErfcAndGaussian(MathF.Abs(x) * InvSqrt2);
        var cdf = x >= 0 ? 1 - 0.5f * erfc : 0.5f * erfc;
        return MathF.FusedMultiplyAdd(x * InvSqrt2Pi, gaussian, cdf);
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
        var (source, masks, target) = (TensorPointers.First(x), TensorPointers.First(mask), TensorPointers.First(y));
        CpuParallel.For(x.numel() / n, 1, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            for (var row = start; row < end; row++)
            {
                float* xr = (float*)source + row * n, mr = (float*)masks + row / rowsPerBatch * n, outr = (float*)target + row * n;
                var max = Vector512.Create(float.MinValue);
                for (long j = 0; j < n; j += Vector512<float>.Count)
                {
                    max = Vector512.Max(max, Vector512.Load(xr + j) + Vector512.Load(mr + j));
                }

                var top = Vector512.Create(VectorMath.MaxAcross(max));
                var sum = Vector512<float>.Zero;
                for (long j = 0; j < n; j += Vector512<float>.Count)
                {
                    // exp's floor is the smallest normal float, not 0: masked keys are set to 0 exactly.
                    var v = Vector512.Load(xr + j) + Vector512.Load(mr + j) - top;
                    var e = Vector512.ConditionalSelect(Vector512.GreaterThan(v, Vector512.Create(-87f)), VectorMath.Exp(v), Vector512<float>.Zero);
                    sum += e;
                    Vector512.Store(e, outr + j);
                }

                var inverse = Vector512.Create(1 / Vector512.Sum(sum));
                for (long j = 0; j < n; j += Vector512<float>.Count)
                {
                    Vector512.Store(Vector512.Load(outr + j) * inverse, outr + j);
                }
            }
        }, work: n * 8);
        return y;
    }

    /// <summary>scale·y·(g − Σ g·y) with g = dy (∘ gate when given) over the last dimension: softmax's backward from its
    /// saved output, with attention's dropout mask and score scale folded in.</summary>
    public static Tensor SoftmaxGrad(Tensor dy, Tensor y, Tensor? gate, float scale)
    {
        var dx = empty_like(y);
        var n = y.shape[^1];
        var (gradient, source, gates, target) = (TensorPointers.First(dy), TensorPointers.First(y), gate is null ? 0 : TensorPointers.First(gate), TensorPointers.First(dx));
        CpuParallel.For(y.numel() / n, 1, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            var s = Vector512.Create(scale);
            for (var row = start; row < end; row++)
            {
                float* gr = (float*)gradient + row * n, yr = (float*)source + row * n, outr = (float*)target + row * n;
                var mr = gates == 0 ? null : (float*)gates + row * n;
                var dot = Vector512<float>.Zero;
                for (long j = 0; j < n; j += Vector512<float>.Count)
                {
                    var g = mr == null ? Vector512.Load(gr + j) : Vector512.Load(gr + j) * Vector512.Load(mr + j);
                    dot = Vector512.FusedMultiplyAdd(g, Vector512.Load(yr + j), dot);
                }

                var sum = Vector512.Create(Vector512.Sum(dot));
                for (long j = 0; j < n; j += Vector512<float>.Count)
                {
                    var g = mr == null ? Vector512.Load(gr + j) : Vector512.Load(gr + j) * Vector512.Load(mr + j);
                    Vector512.Store((g - sum) * Vector512.Load(yr + j) * s, outr + j);
                }
            }
        }, work: n * 3);
        return dx;
    }

    /// <summary>LayerNorm's input gradient, mean and rstd recomputed per row from the saved input:
    /// rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·weight.</summary>
    public static Tensor LayerNormInputGrad(Tensor dy, Tensor x, Tensor weight, double eps)
    {
        var dx = empty_like(x);
        var n = x.shape[^1];
        var (gradient, source, weights, target) = (TensorPointers.First(dy), TensorPointers.First(x), TensorPointers.First(weight), TensorPointers.First(dx));
        CpuParallel.For(x.numel() / n, 1, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            var gain = (float*)weights;
            for (var row = start; row < end; row++)
            {
                float* gr = (float*)gradient + row * n, xr = (float*)source + row * n, outr = (float*)target + row * n;
                var (mean, rstd) = Moments(xr, n, eps);
                var (sumG, sumGXhat) = (Vector512<float>.Zero, Vector512<float>.Zero);
                for (long j = 0; j < n; j += Vector512<float>.Count)
                {
                    var gj = Vector512.Load(gr + j) * Vector512.Load(gain + j);
                    sumG += gj;
                    sumGXhat = Vector512.FusedMultiplyAdd(gj, (Vector512.Load(xr + j) - mean) * rstd, sumGXhat);
                }

                var meanG = Vector512.Create(Vector512.Sum(sumG) / n);
                var meanGXhat = Vector512.Create(Vector512.Sum(sumGXhat) / n);
                for (long j = 0; j < n; j += Vector512<float>.Count)
                {
                    var gj = Vector512.Load(gr + j) * Vector512.Load(gain + j);
                    var xhat = (Vector512.Load(xr + j) - mean) * rstd;
                    Vector512.Store((gj - meanG - xhat * meanGXhat) * rstd, outr + j);
                }
            }
        }, work: n * 4);
        return dx;
    }

    /// <summary>LayerNorm's gain gradient Σ over rows of dy·x̂: each chunk of rows sums into its own row of float32
    /// partials, added at the end (a different order from torch's reduction, so the last bits differ).</summary>
    public static Tensor LayerNormWeightGrad(Tensor dy, Tensor x, double eps)
    {
        var n = x.shape[^1];
        var rows = x.numel() / n;
        var chunks = Math.Max(1, Math.Min(rows, get_num_threads() * 4));
        var chunkRows = (rows + chunks - 1) / chunks;
        using var partials = zeros(new[] { chunks, n }, ScalarType.Float32);
        var (gradient, source, sums) = (TensorPointers.First(dy), TensorPointers.First(x), TensorPointers.First(partials));
        CpuParallel.For(chunks, 1, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (startChunk, endChunk) =>
        {
            for (var chunk = startChunk; chunk < endChunk; chunk++)
            {
                var acc = (float*)sums + chunk * n;
                for (var row = chunk * chunkRows; row < Math.Min(rows, (chunk + 1) * chunkRows); row++)
                {
                    float* gr = (float*)gradient + row * n, xr = (float*)source + row * n;
                    var (mean, rstd) = Moments(xr, n, eps);
                    for (long j = 0; j < n; j += Vector512<float>.Count)
                    {
                        var xhat = (Vector512.Load(xr + j) - mean) * rstd;
                        Vector512.Store(Vector512.FusedMultiplyAdd(Vector512.Load(gr + j), xhat, Vector512.Load(acc + j)), acc + j);
                    }
                }
            }
        }, work: chunkRows * n * 3);
        return partials.sum(new long[] { 0 });
    }

    /// <summary>A row's mean and 1/√(variance + eps), two passes (the row is in L1), broadcast to vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> Mean, Vector512<float> Rstd) Moments(float* row, long n, double eps)
    {
        var sum = Vector512<float>.Zero;
        for (long j = 0; j < n; j += Vector512<float>.Count)
        {
            sum += Vector512.Load(row + j);
        }

        var mean = Vector512.Create(Vector512.Sum(sum) / n);
        var squares = Vector512<float>.Zero;
        for (long j = 0; j < n; j += Vector512<float>.Count)
        {
            var centered = Vector512.Load(row + j) - mean;
            squares = Vector512.FusedMultiplyAdd(centered, centered, squares);
        }

        var rstd = (float)(1 / Math.Sqrt(Vector512.Sum(squares) / n + eps));
        return (mean, Vector512.Create(rstd));
    }
}
