using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Quantization;

/// <summary>A fixed-size histogram of |x| over [0, Range], accumulated batch by batch in bounded memory. Range starts
/// at the first non-zero batch's max |x| and, when a later batch goes beyond it, doubles as often as needed: bin
/// edges stay aligned, so each new bin is exactly the sum of 2ᵏ old ones (no interpolation, counts stay exact).</summary>
internal sealed class AbsHistogram
{
    private readonly double[] _counts;
    private double _pendingZeros;

    public AbsHistogram(int bins)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 1);
        _counts = new double[bins];
    }

    public int Bins => _counts.Length;

    /// <summary>Upper edge of the last bin; 0 until a non-zero value has been seen.</summary>
    public double Range { get; private set; }

    /// <summary>Largest |x| seen.</summary>
    public double MaxAbs { get; private set; }

    public double Total { get; private set; }

    public double BinWidth => Range / Bins;

    public ReadOnlySpan<double> Counts => _counts;

    public void Add(Tensor value, double maxAbs)
    {
        var n = value.numel();
        Total += n;
        if (maxAbs == 0)
        {
            if (Range == 0)
            {
                _pendingZeros += n;
            }
            else
            {
                _counts[0] += n;
            }

            return;
        }

        MaxAbs = Math.Max(MaxAbs, maxAbs);
        if (Range == 0)
        {
            Range = maxAbs;
            _counts[0] += _pendingZeros;
            _pendingZeros = 0;
        }

        var range = Range;
        while (range < maxAbs)
        {
            range *= 2;
        }

        if (range > Range)
        {
            Merge(range);
        }

        // Bin index floor(|x|·bins/range), the max clamped into the last bin; bincount counts in int64, exactly.
        using var abs = value.dtype == ScalarType.Float32 ? value.abs() : value.to(ScalarType.Float32).abs_();
        abs.mul_(Bins / Range);
        using var index = abs.to(ScalarType.Int64).clamp_max_(Bins - 1).reshape(-1);
        using var hist = index.bincount(null, Bins);
        using var onHost = hist.cpu();
        var counts = onHost.data<long>().ToArray();
        for (var i = 0; i < counts.Length; i++)
        {
            _counts[i] += counts[i];
        }
    }

    /// <summary>Re-bins onto [0, <paramref name="range"/>], a power-of-two multiple of the current range: old bin i
    /// lies wholly inside new bin ⌊i / factor⌋ (all of them in bin 0 once the factor reaches the bin count).</summary>
    private void Merge(double range)
    {
        var factor = range / Range;
        var merged = new double[_counts.Length];
        for (var i = 0; i < _counts.Length; i++)
        {
            merged[(int)Math.Min(Math.Floor(i / factor), _counts.Length - 1)] += _counts[i];
        }

        merged.CopyTo(_counts, 0);
        Range = range;
    }
}
