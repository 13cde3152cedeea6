using GraphCompiler.Runtime.Training;
using ScottPlot;

namespace GraphCompiler.Runtime.Reporting;

/// <summary>The training curves as a PNG (ScottPlot): loss per logged step on the left axis, training accuracy per
/// logged step and the dev metrics per epoch (plotted at the epoch's last step) on the right axis.</summary>
public static class TrainingPlot
{
    public static byte[] Png(TrainingHistory history, int width = 900, int height = 500)
    {
        using var plot = new Plot();
        plot.Title("Training");
        plot.XLabel("optimizer step");
        plot.YLabel("loss");
        var steps = history.Steps;
        if (steps.Count > 0)
        {
            var xs = steps.Select(s => (double)s.Step).ToArray();
            var loss = plot.Add.Scatter(xs, steps.Select(s => s.Loss).ToArray());
            loss.LegendText = "train loss";
            if (steps.Any(s => double.IsFinite(s.Accuracy)))
            {
                var acc = plot.Add.Scatter(xs, steps.Select(s => s.Accuracy).ToArray());
                acc.LegendText = "train accuracy (epoch so far)";
                acc.Axes.YAxis = plot.Axes.Right;
            }
        }

        var metrics = history.Epochs.SelectMany(e => e.Dev.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        foreach (var m in metrics)
        {
            var points = history.Epochs.Where(e => e.Dev.ContainsKey(m)).ToList();
            var dev = plot.Add.Scatter(points.Select(e => (double)e.Steps).ToArray(), points.Select(e => e.Dev[m]).ToArray());
            dev.LegendText = "dev " + m + " (per epoch)";
            dev.MarkerSize = 9;
            dev.Axes.YAxis = plot.Axes.Right;
        }

        plot.Axes.Right.Label.Text = "accuracy / dev metric";
        plot.ShowLegend();
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }
}
