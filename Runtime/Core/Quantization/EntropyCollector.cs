using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Quantization;

/// <summary>Entropy calibration (TensorRT's, also MXNet's): a histogram of |x| (2048 bins) is collected over all
/// batches; every candidate threshold at a bin edge i ∈ [128, 2048] is scored by KL(P ‖ Q), where P is the histogram
/// clipped at i (the mass beyond folded into bin i − 1) and Q is what int8 keeps of it: bins [0, i) merged into 128
/// levels, each level's mass spread evenly over its bins where P is non-zero. The threshold with the least information
/// loss wins; a candidate whose Q misses some of P's mass (infinite divergence) is never chosen.</summary>
public sealed class EntropyCollector : HistogramCollector
{
    public const int DefaultBins = 2048, DefaultLevels = 128;

    public EntropyCollector(int bins = DefaultBins, int levels = DefaultLevels)
        : base(bins)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(levels, 2);
        if (bins < levels)
        {
            throw new ArgumentOutOfRangeException(nameof(bins), bins, $"EntropyCollector: needs at least as many bins as levels ({levels})");
        }

        Levels = levels;
    }

    public int Levels { get; }

    private protected override double Threshold(AbsHistogram histogram)
    {
        var best = BestEdge(histogram.Counts, Levels);
        return Math.Min(best * histogram.BinWidth, histogram.MaxAbs);
    }

    /// <summary>The bin edge i ∈ [levels, bins] with the least KL(P ‖ Q); exposed for tests on hand-made histograms.</summary>
    internal static int BestEdge(ReadOnlySpan<double> counts, int levels)
    {
        var bins = counts.Length;
        var total = 0.0;
        foreach (var c in counts)
        {
            total += c;
        }

        // suffix[i] = mass at or beyond bin i: what clipping at edge i folds into bin i − 1.
        var suffix = new double[bins + 1];
        for (var i = bins - 1; i >= 0; i--)
        {
            suffix[i] = suffix[i + 1] + counts[i];
        }

        var bestEdge = bins;
        var bestDivergence = double.PositiveInfinity;
        for (var edge = levels; edge <= bins; edge++)
        {
            var divergence = Divergence(counts, edge, levels, total, suffix[edge]);
            if (divergence < bestDivergence)
            {
                (bestDivergence, bestEdge) = (divergence, edge);
            }
        }

        return bestEdge;
    }

    private static double Divergence(ReadOnlySpan<double> counts, int edge, int levels, double total, double outliers)
    {
        var kept = total - outliers;
        if (kept <= 0)
        {
            return double.PositiveInfinity;
        }

        var divergence = 0.0;
        for (var level = 0; level < levels; level++)
        {
            var start = (int)((long)level * edge / levels);
            var end = (int)((long)(level + 1) * edge / levels);
            double mass = 0, nonZero = 0;
            for (var i = start; i < end; i++)
            {
                mass += counts[i];
                if (P(counts, i, edge, outliers) > 0)
                {
                    nonZero++;
                }
            }

            for (var i = start; i < end; i++)
            {
                var p = P(counts, i, edge, outliers);
                if (p <= 0)
                {
                    continue;
                }

                var q = mass / nonZero;
                if (q <= 0)
                {
                    return double.PositiveInfinity;
                }

                // Σ p̂ log(p̂ / q̂) with p̂ = p / total and q̂ = q / kept.
                divergence += p / total * Math.Log(p / total / (q / kept));
            }
        }

        return divergence;
    }

    private static double P(ReadOnlySpan<double> counts, int i, int edge, double outliers) =>
        i == edge - 1 ? counts[i] + outliers : counts[i];
}
