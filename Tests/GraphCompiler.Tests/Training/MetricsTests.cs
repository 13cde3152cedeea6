using GraphCompiler.Runtime.Training;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Training;

/// <summary>Metrics and losses against values worked out by hand.</summary>
public class MetricsTests
{
    // predicted: 1 1 0 1 0 0 1 0 ; actual: 1 0 0 1 1 0 1 0 → TP 3, FP 1, FN 1, TN 3.
    private static readonly int[] Predicted = [1, 1, 0, 1, 0, 0, 1, 0];
    private static readonly int[] Actual = [1, 0, 0, 1, 1, 0, 1, 0];

    [Fact]
    public void ClassificationMetricsMatchHandComputedValues()
    {
        Assert.Equal(6.0 / 8, Metrics.AccuracyOf(Predicted, Actual), 12);
        Assert.Equal(2.0 * 3 / ((2 * 3) + 1 + 1), Metrics.F1Of(Predicted, Actual), 12);     // 0.75
        Assert.Equal(((3.0 * 3) - (1 * 1)) / Math.Sqrt(4.0 * 4 * 4 * 4), Metrics.MccOf(Predicted, Actual), 12); // 0.5
    }

    [Fact]
    public void F1CountsClassOneAsPositive()
    {
        // All predicted 0: no true positives → F1 0 (though accuracy is 0.75), MCC 0 (a factor of its denominator is 0).
        int[] predicted = [0, 0, 0, 0];
        int[] actual = [0, 0, 0, 1];
        Assert.Equal(0.75, Metrics.AccuracyOf(predicted, actual), 12);
        Assert.Equal(0.0, Metrics.F1Of(predicted, actual));
        Assert.Equal(0.0, Metrics.MccOf(predicted, actual));
        // Swapping which class is positive: TP 3, FN 0, FP 1 → 6/7.
        Assert.Equal(6.0 / 7, Metrics.F1Of(predicted, actual, positive: 0), 12);
    }

    [Fact]
    public void CorrelationsMatchHandComputedValues()
    {
        double[] x = [1, 2, 3, 4];
        double[] y = [2, 4, 5, 9];
        // mean x 2.5, mean y 5; dx = -1.5 -0.5 0.5 1.5; dy = -3 -1 0 4 → Σdxdy = 4.5+0.5+0+6 = 11, Σdx² = 5, Σdy² = 26.
        Assert.Equal(11 / Math.Sqrt(5.0 * 26), Metrics.PearsonOf(x, y), 12);
        Assert.Equal(1.0, Metrics.SpearmanOf(x, y), 12);
        // Ties: y ranks (1, 2.5, 2.5, 4); Spearman = Pearson(1 2 3 4; 1 2.5 2.5 4) = 4.5 / √(5·4.5).
        double[] tied = [0.1, 0.5, 0.5, 0.9];
        Assert.Equal([1, 2.5, 2.5, 4], Metrics.Ranks(tied));
        Assert.Equal(4.5 / Math.Sqrt(5 * 4.5), Metrics.SpearmanOf(x, tied), 12);
        // Reversed order → −1.
        Assert.Equal(-1.0, Metrics.SpearmanOf(x, [9, 7, 3, 1]), 12);
        Assert.True(double.IsNaN(Metrics.PearsonOf(x, [1, 1, 1, 1])));
        Assert.Equal((0.25 + 0 + 1 + 0) / 4, Metrics.MseOf([1.5, 2, 4, 4], x), 12);
    }

    [Fact]
    public void LossesCountOnlyRealRows()
    {
        using var scope = NewDisposeScope();
        // Rows 0-1 real, rows 2-3 filler with wild logits and labels.
        var logits = tensor(new float[] { 2, 0, 0, 1, 50, -50, 1e30f, 0 }, [4, 2]);
        var labels = tensor(new long[] { 0, 1, 1, 0 });
        var mask = tensor(new[] { true, true, false, false });
        // Row 0: −log(e²/(e²+1)) = log(1+e⁻²); row 1: log(1+e⁻¹).
        var expected = (Math.Log(1 + Math.Exp(-2)) + Math.Log(1 + Math.Exp(-1))) / 2;
        Assert.Equal(expected, Losses.CrossEntropy(logits, labels, mask).item<float>(), 5);
        var predictions = tensor(new float[] { 1, 2, 100, 100 });
        var targets = tensor(new float[] { 0, 4, 0, 0 });
        Assert.Equal((1 + 4) / 2.0, Losses.MeanSquaredError(predictions, targets, mask).item<float>(), 5);
    }

    [Fact]
    public void ScheduleWarmsUpLinearlyThenDecaysToZero()
    {
        var s = LearningRateSchedule.Create(ScheduleKind.LinearWarmupDecay, 1e-3, totalSteps: 10, warmupRatio: 0.2);
        Assert.Equal(2, s.WarmupSteps);
        double[] expected = [0.5e-3, 1e-3, 1e-3, 0.875e-3, 0.75e-3, 0.625e-3, 0.5e-3, 0.375e-3, 0.25e-3, 0.125e-3];
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(expected[i], s.At(i), 15);
        }

        Assert.Equal(0, s.At(10));
        var constant = LearningRateSchedule.Create(ScheduleKind.Constant, 5e-6, 10, 0.2);
        Assert.All(Enumerable.Range(0, 10), i => Assert.Equal(5e-6, constant.At(i)));
    }
}
