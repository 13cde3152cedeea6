using GraphCompiler.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Runtime;

/// <summary>RMSNorm and SiLU kernels in float64: the forwards against their definitions written out here, the gradient
/// kernels against libtorch autograd through those definitions and against central finite differences.</summary>
[Collection(TorchRngCollection.Name)]
public sealed class RmsNormSiluKernelTests
{
    private const double Tolerance = 1e-12;              // float64, same formula up to summation order
    private const double FiniteDifferenceTolerance = 1e-6;
    private const double Eps = 1e-6;

    public RmsNormSiluKernelTests() => manual_seed(5);

    private static Tensor RmsNormReference(Tensor x, Tensor w) => x / (x.pow(2).mean(new long[] { -1 }, keepdim: true) + Eps).sqrt() * w;

    private static Tensor SiluReference(Tensor x) => x * x.neg().exp().add(1).reciprocal();

    [Fact]
    public void ForwardsMatchTheirDefinitions()
    {
        using var scope = NewDisposeScope();
        var x = randn(3, 5, 12, dtype: ScalarType.Float64) * 3;
        var w = randn(12, dtype: ScalarType.Float64);
        AssertClose(RmsNormReference(x, w), Kernels.RmsNorm(x, w, Eps), Tolerance);
        AssertClose(SiluReference(x), Kernels.Silu(x), Tolerance);
    }

    [Fact]
    public void RmsNormGradientsMatchAutograd()
    {
        using var scope = NewDisposeScope();
        var x = (randn(3, 5, 12, dtype: ScalarType.Float64) * 3).requires_grad_(true);
        var w = randn(12, dtype: ScalarType.Float64).requires_grad_(true);
        var dy = randn(3, 5, 12, dtype: ScalarType.Float64);
        (RmsNormReference(x, w) * dy).sum().backward();
        using var noGrad = no_grad();
        AssertClose(x.grad!, Kernels.RmsNormInputGrad(dy, x.detach(), w.detach(), Eps), 1e-10);
        AssertClose(w.grad!, Kernels.RmsNormWeightGrad(dy, x.detach(), Eps), 1e-10);
    }

    [Fact]
    public void SiluGradientMatchesAutograd()
    {
        using var scope = NewDisposeScope();
        var x = (randn(4, 7, 9, dtype: ScalarType.Float64) * 5).requires_grad_(true);
        var dy = randn(4, 7, 9, dtype: ScalarType.Float64);
        (SiluReference(x) * dy).sum().backward();
        using var noGrad = no_grad();
        AssertClose(x.grad!, Kernels.SiluGrad(dy, x.detach()), 1e-10);
    }

    [Fact]
    public void GradientsMatchFiniteDifferences()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(2, 3, 6, dtype: ScalarType.Float64) * 2;
        var w = randn(6, dtype: ScalarType.Float64);
        var dy = randn(2, 3, 6, dtype: ScalarType.Float64);
        double Loss(Func<Tensor> f) => (f() * dy).sum().item<double>();
        var dx = Kernels.RmsNormInputGrad(dy, x, w, Eps);
        var dw = Kernels.RmsNormWeightGrad(dy, x, Eps);
        var dsilu = Kernels.SiluGrad(dy, x);
        const double h = 1e-6;
        for (var i = 0; i < x.numel(); i += 5)
        {
            var flat = x.view(-1);
            var original = flat[i].item<double>();
            flat[i] = original + h;
            var (normPlus, siluPlus) = (Loss(() => Kernels.RmsNorm(x, w, Eps)), Loss(() => Kernels.Silu(x)));
            flat[i] = original - h;
            var (normMinus, siluMinus) = (Loss(() => Kernels.RmsNorm(x, w, Eps)), Loss(() => Kernels.Silu(x)));
            flat[i] = original;
            AssertRelative((normPlus - normMinus) / (2 * h), dx.view(-1)[i].item<double>(), $"∂/∂x[{i}] of rms_norm");
            AssertRelative((siluPlus - siluMinus) / (2 * h), dsilu.view(-1)[i].item<double>(), $"∂/∂x[{i}] of silu");
        }

        for (var j = 0; j < w.numel(); j++)
        {
            var original = w[j].item<double>();
            w[j] = original + h;
            var plus = Loss(() => Kernels.RmsNorm(x, w, Eps));
            w[j] = original - h;
            var minus = Loss(() => Kernels.RmsNorm(x, w, Eps));
            w[j] = original;
            AssertRelative((plus - minus) / (2 * h), dw[j].item<double>(), $"∂/∂weight[{j}] of rms_norm");
        }
    }

    private static void AssertRelative(double numeric, double analytic, string what)
    {
        var error = Math.Abs(numeric - analytic) / Math.Max(1e-3, Math.Abs(numeric) + Math.Abs(analytic));
        Assert.True(error <= FiniteDifferenceTolerance, $"{what}: kernel {analytic:E8}, finite difference {numeric:E8}");
    }

    private static void AssertClose(Tensor expected, Tensor actual, double tolerance)
    {
        Assert.Equal(expected.shape, actual.shape);
        var scale = Math.Max(expected.abs().max().item<double>(), 1e-12);
        var error = (expected - actual).abs().max().item<double>() / scale;
        Assert.True(error <= tolerance, $"relative error {error:E2} > {tolerance:E0}");
    }
}
