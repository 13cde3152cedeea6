using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Quantization;

/// <summary>The threshold is the given percentile of |x| over all batches, read from a histogram (linear within the
/// bin it falls in), so memory stays a few pages per slot whatever the number of batches.</summary>
public sealed class PercentileCollector : HistogramCollector
{
    public const double DefaultPercentile = 99.99;
    public const int DefaultBins = 8192;

    public PercentileCollector(double percentile = DefaultPercentile, int bins = DefaultBins)
        : base(bins)
    {
        if (!(percentile > 0 && percentile <= 100))
        {
            throw new ArgumentOutOfRangeException(nameof(percentile), percentile, "PercentileCollector: the percentile must be in (0, 100]");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 16);
        Percentile = percentile;
    }

    public double Percentile { get; }

    private protected override double Threshold(AbsHistogram histogram)
    {
        var target = histogram.Total * Percentile / 100;
        var counts = histogram.Counts;
        var cumulative = 0.0;
        for (var i = 0; i < counts.Length; i++)
        {
            if (counts[i] > 0 && cumulative + counts[i] >= target)
            {
                var within = Math.Clamp((target - cumulative) / counts[i], 0, 1);
                return Math.Min((i + within) * histogram.BinWidth, histogram.MaxAbs);
            }

            cumulative += counts[i];
        }

        return histogram.MaxAbs;
    }
}
