using GraphCompiler.Runtime.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Training;

/// <summary>The fused AdamW against TorchSharp's AdamW: same parameters, same gradients, two groups (decayed and not),
/// several steps. (Saving and resuming its state is the trainer's resume test.)</summary>
public sealed class FusedAdamWTests
{
    [Fact]
    public void MatchesTorchAdamWOverSteps()
    {
        manual_seed(3);
        // 1,000 elements: not a multiple of the vector width, so the tail loop runs too.
        using var init = randn(1000);
        using var bias0 = randn(37);
        var (fused, reference) = (Parameters(init, bias0), Parameters(init, bias0));
        using var a = new FusedAdamW(Groups(fused), 1e-2, 0.9, 0.999, 1e-6, 0.01);
        using var b = new AdamW(Groups(reference), 1e-2, 0.9, 0.999, 1e-6, 0.01);
        for (var step = 0; step < 6; step++)
        {
            using var g0 = randn(1000);
            using var g1 = randn(37).mul_(step + 1);
            SetGrads(fused, g0, g1);
            SetGrads(reference, g0, g1);
            a.step();
            b.step();
        }

        for (var i = 0; i < fused.Length; i++)
        {
            using var diff = (fused[i] - reference[i]).abs().max();
            Assert.True(diff.item<float>() <= 2e-6, $"parameter {i}: max |Δ| {diff.item<float>():E2}");
        }
    }

    private static Parameter[] Parameters(Tensor weight, Tensor bias) =>
        new[] { new Parameter(weight.clone()), new Parameter(bias.clone()) };

    private static AdamW.ParamGroup[] Groups(Parameter[] p) =>
        new[] { new AdamW.ParamGroup(new[] { p[0] }, 1e-2, 0.9, 0.999, 1e-6, 0.01), new AdamW.ParamGroup(new[] { p[1] }, 1e-2, 0.9, 0.999, 1e-6, 0) };

    private static void SetGrads(Parameter[] p, Tensor g0, Tensor g1)
    {
        p[0].grad = g0.clone();
        p[1].grad = g1.clone();
    }
}
