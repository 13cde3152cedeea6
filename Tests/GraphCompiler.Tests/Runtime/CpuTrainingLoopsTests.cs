using System.Runtime.Intrinsics.X86;
using GraphCompiler.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Runtime;

/// <summary>The single-pass CPU gradient kernels (float32, AVX-512) against libtorch autograd in float64 on the same
/// values: each kernel's float32 result within a tolerance relative to the gradient's largest entry.</summary>
[Collection(TorchRngCollection.Name)] // reseeds torch's global generator and expects the same dropout mask
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
        using var actual = Kernels.GeluGrad(dy.to(ScalarType.Float32), x.to(ScalarType.Float32));
        AssertClose(expected, actual);
    }

    /// <summary>The forward GELU without autograd (the training forward runs inside the generated Function under
    /// no_grad) against float64 torch.</summary>
    [Fact]
    public void GeluMatchesTorch()
    {
        using var x = randn(4, 7, 37, dtype: ScalarType.Float64).mul_(4);
        using var expected = nn.functional.gelu(x);
        using var _ = no_grad();
        using var actual = Kernels.Gelu(x.to(ScalarType.Float32));
        AssertClose(expected, actual);
    }

    [Fact]
    public void SoftmaxGradMatchesAutograd()
    {
        using var scores = randn(2, 3, 5, 64, dtype: ScalarType.Float64).mul_(3);
        using var y = softmax(scores, -1);
        using var dy = randn(2, 3, 5, 64, dtype: ScalarType.Float64);
        using var expected = AutogradOf(scores, dy, v => softmax(v, -1));
        using var actual = Kernels.SoftmaxGrad(dy.to(ScalarType.Float32), y.to(ScalarType.Float32));
        AssertClose(expected, actual);
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
        using var actual = Kernels.SoftmaxGrad(dy.to(ScalarType.Float32), y.to(ScalarType.Float32), gate.to(ScalarType.Float32), 0.25);
        AssertClose(expected, actual);
    }

    /// <summary>softmax(x + length mask) against float64 torch, with padded keys (the mask's lowest value) in every
    /// batch row but the first.</summary>
    [Fact]
    public void MaskedSoftmaxMatchesTorch()
    {
        using var x = randn(3, 2, 5, 32, dtype: ScalarType.Float64).mul_(4);
        using var lengths = tensor(new long[] { 32, 20, 1 });
        using var mask = Kernels.LengthMask(lengths, 32, ScalarType.Float32);
        Assert.Equal(Avx512F.IsSupported, CpuTrainingLoops.AppliesMaskedSoftmax(x.to(ScalarType.Float32), mask));
        using var expected = softmax(x + mask.to(ScalarType.Float64), -1);
        using var actual = Kernels.MaskedSoftmax(x.to(ScalarType.Float32), mask);
        AssertClose(expected, actual);
        Assert.Equal(0f, actual[2, 1, 3, 1..].abs().max().item<float>());
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
        using var dx = Kernels.LayerNormInputGrad(dy32, x32, weight.to(ScalarType.Float32), 1e-12);
        using var dw = Kernels.LayerNormWeightGrad(dy32, x32, 1e-12);
        AssertClose(xLeaf.grad!, dx);
        AssertClose(wLeaf.grad!, dw);
    }

    /// <summary>The mask's statistics over 1,000,003 elements (a vector tail included): the dropped fraction within 6σ
    /// of p, kept entries exactly 1/(1−p), neighbours uncorrelated; the same seed gives the same mask, the next call
    /// another.</summary>
    [Fact]
    public void DropoutMaskIsSeededAndUnbiased()
    {
        const int n = 1_000_003;
        const double p = 0.1;
        using var like = empty(n);
        manual_seed(5);
        using var mask = Kernels.DropoutMask(like, p);
        using var again = Kernels.DropoutMask(like, p);
        manual_seed(5);
        using var repeated = Kernels.DropoutMask(like, p);

        Assert.True(mask.eq(repeated).all().item<bool>(), "the same seed must give the same mask");
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
    }

    /// <summary>The comparisons above prove the AVX-512 loops where the machine has AVX-512 and the torch fallback where
    /// it does not (CI hosts of both kinds have run them); this pins which of the two each shape takes.</summary>
    [Fact]
    public void KernelsAreTakenExactlyWhereTheMachineHasAvx512()
    {
        var fast = Avx512F.IsSupported;
        using var x = randn(2, 32);
        Assert.Equal(fast, CpuTrainingLoops.Applies(32, x));
        Assert.False(CpuTrainingLoops.Applies(33, x));
        Assert.False(CpuTrainingLoops.Applies(32, x.to(ScalarType.Float64)));
        Assert.False(CpuTrainingLoops.Applies(2, x.t()));
        using var odd = randn(4, 7, 37);
        Assert.Equal(fast, CpuTrainingLoops.AppliesElementwise(odd, odd));
        Assert.Equal(fast, CpuTrainingLoops.AppliesElementwise(empty(1_000_003)));
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
