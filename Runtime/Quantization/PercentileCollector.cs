using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Quantization;

/// <summary>The threshold is the given percentile of |x| over all batches, read from a histogram (linear within the
/// bin it falls in), so memory stays a few pages per slot whatever the number of batches.</summary>
public sealed class PercentileCollector : CalibrationCollector
{
    public const double DefaultPercentile = 99.99;
    public const int DefaultBins = 8192;

    public PercentileCollector(double percentile = DefaultPercentile, int bins = DefaultBins)
    {
        if (!(percentile > 0 && percentile <= 100))
        {
            throw new ArgumentOutOfRangeException(nameof(percentile), percentile, "PercentileCollector: the percentile must be in (0, 100]");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 16);
        Percentile = percentile;
        BinCount = bins;
    }

    public double Percentile { get; }

    public int BinCount { get; }

    private protected override object NewState(string slot, string kind) => new AbsHistogram(BinCount);

    private protected override void Add(object state, string slot, string kind, Tensor value)
    {
        var (min, max) = MinMax(value, slot);
        ((AbsHistogram)state).Add(value, Math.Max(-min, max));
    }

    private protected override double Threshold(object state)
    {
        var histogram = (AbsHistogram)state;
        if (histogram.Range == 0)
        {
            return 0;
        }

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
