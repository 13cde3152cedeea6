using GraphCompiler.Runtime;
using GraphCompiler.Tests.Infrastructure;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Runtime;

/// <summary>The single-pass CPU gradient kernels (float32) against libtorch autograd in float64 on the same values: each
/// kernel's float32 result within a tolerance relative to the gradient's largest entry, at every vector width and
/// through the torch compositions taken without vector acceleration (width 0).</summary>
[Collection(TorchRngCollection.Name)] // reseeds torch's global generator and expects the same dropout mask
[Trait(VectorWidths.Category, VectorWidths.Kernels)]
public sealed class CpuTrainingLoopsTests
{
    private const double Tolerance = 2e-6;

    public CpuTrainingLoopsTests() => manual_seed(11);

    [Fact]
    public void GeluGradMatchesAutograd()
    {
        // Spans GELU's tails (|x| up to ~12) and the odd-length tail loop (4·7·37 is not a multiple of 16).
        using var x = randn(4, 7, 37, dtype: ScalarType.Float64).mul_(4);
        using var dy = randn(4, 7, 37, dtype: ScalarType.Float64);
        using var expected = AutogradOf(x, dy, v => nn.functional.gelu(v));
        AtEveryWidth(() => Kernels.GeluGrad(dy.to(ScalarType.Float32), x.to(ScalarType.Float32)), actual => AssertClose(expected, actual));
    }

    /// <summary>The forward GELU without autograd (the training forward runs inside the generated Function under
    /// no_grad) against float64 torch.</summary>
    [Fact]
    public void GeluMatchesTorch()
    {
        using var x = randn(4, 7, 37, dtype: ScalarType.Float64).mul_(4);
        using var expected = nn.functional.gelu(x);
        using var _ = no_grad();
        AtEveryWidth(() => Kernels.Gelu(x.to(ScalarType.Float32)), actual => AssertClose(expected, actual));
    }

    [Fact]
    public void SoftmaxGradMatchesAutograd()
    {
        using var scores = randn(2, 3, 5, 64, dtype: ScalarType.Float64).mul_(3);
        using var y = softmax(scores, -1);
        using var dy = randn(2, 3, 5, 64, dtype: ScalarType.Float64);
        using var expected = AutogradOf(scores, dy, v => softmax(v, -1));
        AtEveryWidth(() => Kernels.SoftmaxGrad(dy.to(ScalarType.Float32), y.to(ScalarType.Float32)), actual => AssertClose(expected, actual));
    }

    /// <summary>The gated form attention's backward uses: scale·softmax_grad(dy ∘ dropout mask, y).</summary>
    [Fact]
    public void GatedSoftmaxGradMatchesAutograd()
    {
        using var scores = randn(2, 3, 5, 32, dtype: ScalarType.Float64).mul_(3);
        using var y = softmax(scores.mul(0.25), -1);
        using var gate = bernoulli(full_like(y, 0.9)).div_(0.9);
        using var dy = randn(2, 3, 5, 32, dtype: ScalarType.Float64);
        using var expected = AutogradOf(scores, dy, v => softmax(v.mul(0.25), -1).mul(gate));
        AtEveryWidth(() => Kernels.SoftmaxGrad(dy.to(ScalarType.Float32), y.to(ScalarType.Float32), gate.to(ScalarType.Float32), 0.25), actual => AssertClose(expected, actual));
    }

    /// <summary>softmax(x + length mask) against float64 torch, with padded keys (the mask's lowest value) in every
    /// batch row but the first.</summary>
    [Fact]
    public void MaskedSoftmaxMatchesTorch()
    {
        using var x = randn(3, 2, 5, 32, dtype: ScalarType.Float64).mul_(4);
        using var lengths = tensor(new long[] { 32, 20, 1 });
        using var mask = Kernels.LengthMask(lengths, 32, ScalarType.Float32);
        Assert.Equal(VectorWidth.IsAccelerated, CpuTrainingLoops.AppliesMaskedSoftmax(x.to(ScalarType.Float32), mask));
        using var expected = softmax(x + mask.to(ScalarType.Float64), -1);
        AtEveryWidth(() => Kernels.MaskedSoftmax(x.to(ScalarType.Float32), mask), actual =>
        {
            AssertClose(expected, actual);
            Assert.Equal(0f, actual[2, 1, 3, 1..].abs().max().item<float>());
        });
    }

    [Fact]
    public void LayerNormGradsMatchAutograd()
    {
        // A row mean far from 0 and a small spread: the two-pass moments must not lose the centred values.
        using var x = randn(3, 10, 48, dtype: ScalarType.Float64).mul_(0.5).add_(7);
        using var weight = randn(48, dtype: ScalarType.Float64);
        using var bias = randn(48, dtype: ScalarType.Float64);
        using var dy = randn(3, 10, 48, dtype: ScalarType.Float64);
        using var xLeaf = x.detach().requires_grad_(true);
        using var wLeaf = weight.detach().requires_grad_(true);
        using var y = nn.functional.layer_norm(xLeaf, new long[] { 48 }, wLeaf, bias, 1e-12);
        using var grads = y.mul(dy).sum();
        grads.backward();
        using var x32 = x.to(ScalarType.Float32);
        using var dy32 = dy.to(ScalarType.Float32);
        AtEveryWidth(() => Kernels.LayerNormInputGrad(dy32, x32, weight.to(ScalarType.Float32), 1e-12), dx => AssertClose(xLeaf.grad!, dx));
        AtEveryWidth(() => Kernels.LayerNormWeightGrad(dy32, x32, 1e-12), dw => AssertClose(wLeaf.grad!, dw));
    }

    /// <summary>The mask's statistics over 1,000,003 elements (a vector tail included), at every width and through
    /// bernoulli (width 0): the dropped fraction within 6σ of p, kept entries exactly 1/(1−p), neighbours uncorrelated;
    /// the same seed gives the same mask, the next call another. The hash depends on the element index only, so every
    /// vector width draws the very same mask.</summary>
    [Fact]
    public void DropoutMaskIsSeededAndUnbiased()
    {
        const int n = 1_000_003;
        const double p = 0.1;
        using var like = empty(n);
        Tensor? first = null;
        foreach (var width in VectorWidths.WithTorch)
        {
            using var forced = VectorWidth.Force(width);
            manual_seed(5);
            using var mask = Kernels.DropoutMask(like, p);
            using var again = Kernels.DropoutMask(like, p);
            manual_seed(5);
            using var repeated = Kernels.DropoutMask(like, p);

            Assert.True(mask.eq(repeated).all().item<bool>(), $"the same seed must give the same mask ({width} bits)");
            Assert.False(mask.eq(again).all().item<bool>(), "consecutive masks must differ");
            using var kept = mask.ne(0);
            var keptFraction = kept.to(ScalarType.Float64).mean().item<double>();
            Assert.InRange(keptFraction, 1 - p - 6 * Math.Sqrt(p * (1 - p) / n), 1 - p + 6 * Math.Sqrt(p * (1 - p) / n));
            using var keptValues = mask.masked_select(kept);
            Assert.True(keptValues.eq((float)(1 / (1 - p))).all().item<bool>(), "kept entries must be 1/(1−p)");
            using var bits = kept.to(ScalarType.Float64);
            using var centred = bits - keptFraction;
            var correlation = (centred[..^1] * centred[1..]).mean().item<double>() / (keptFraction * (1 - keptFraction));
            Assert.InRange(correlation, -0.01, 0.01);
            if (width != 0)
            {
                first ??= mask.clone();
                Assert.True(first.eq(mask).all().item<bool>(), $"the mask at {width} bits differs from the one at {VectorWidths.Vectors[0]}");
            }
        }

        first?.Dispose();
    }

    /// <summary>The comparisons above prove each width's loops and the torch fallback on any host; this pins which of the
    /// two each shape takes: vector loops whenever a width runs and rows are whole vectors of it.</summary>
    [Fact]
    public void KernelsAreTakenWhereAVectorWidthRuns()
    {
        using var x = randn(2, 32);
        using var odd = randn(4, 7, 37);
        foreach (var width in VectorWidths.WithTorch)
        {
            using var forced = VectorWidth.Force(width);
            var fast = width != 0;
            Assert.Equal(fast, CpuTrainingLoops.Applies(32, x));
            Assert.False(CpuTrainingLoops.Applies(33, x));
            Assert.Equal(fast && width <= 256, CpuTrainingLoops.Applies(8, x)); // rows of 8 floats: whole 256-bit vectors
            Assert.False(CpuTrainingLoops.Applies(32, x.to(ScalarType.Float64)));
            Assert.False(CpuTrainingLoops.Applies(2, x.t()));
            Assert.Equal(fast, CpuTrainingLoops.AppliesElementwise(odd, odd));
            Assert.Equal(fast, CpuTrainingLoops.AppliesElementwise(empty(1_000_003)));
        }
    }

    /// <summary>Runs <paramref name="kernel"/> at every width (and through the torch compositions) and checks each result.</summary>
    private static void AtEveryWidth(Func<Tensor> kernel, Action<Tensor> check)
    {
        foreach (var width in VectorWidths.WithTorch)
        {
            using var forced = VectorWidth.Force(width);
            using var result = kernel();
            check(result);
        }
    }

    private static Tensor AutogradOf(Tensor x, Tensor dy, Func<Tensor, Tensor> f)
    {
        using var leaf = x.detach().requires_grad_(true);
        using var y = f(leaf);
        using var total = y.mul(dy).sum();
        total.backward();
        return leaf.grad!.detach().clone();
    }

    private static void AssertClose(Tensor expected, Tensor actual)
    {
        Assert.Equal(ScalarType.Float32, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        using var diff = (actual.to(ScalarType.Float64) - expected).abs().max();
        var scale = Math.Max(1, expected.abs().max().item<double>());
        Assert.True(diff.item<double>() <= Tolerance * scale, $"max |Δ| {diff.item<double>():E2} against a scale of {scale:F3}");
    }
}
