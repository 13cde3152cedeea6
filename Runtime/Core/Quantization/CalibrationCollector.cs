using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Quantization;

/// <summary>What the collectors share: per-slot state created on first sight, no-grad observation in its own dispose
/// scope, and scale = threshold / 127. A slot whose threshold is 0 (it was all zero) gets scale 1, the same rule as
/// the dynamic scale and the weights: quantizing zeros stays exact and nothing divides by 0. Not thread-safe: a
/// calibration forward observes from one thread.</summary>
public abstract class CalibrationCollector : ICalibrationCollector
{
    private readonly SortedDictionary<string, object> _slots = new(StringComparer.Ordinal);

    private protected CalibrationCollector()
    {
    }

    public void Observe(string slot, string kind, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(slot);
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(value);
        if (!value.is_floating_point())
        {
            throw new ArgumentException($"calibration slot '{slot}': expected a floating-point activation, got {value.dtype}", nameof(value));
        }

        if (value.numel() == 0)
        {
            return;
        }

        if (!_slots.TryGetValue(slot, out var state))
        {
            state = NewState(slot, kind);
            _slots.Add(slot, state);
        }

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        Add(state, slot, kind, value);
    }

    /// <summary>The clipping threshold of every slot seen, in ordinal slot order.</summary>
    public IReadOnlyDictionary<string, float> Thresholds()
    {
        var result = new SortedDictionary<string, float>(StringComparer.Ordinal);
        foreach (var (slot, state) in _slots)
        {
            result[slot] = (float)Threshold(state);
        }

        return result;
    }

    public IReadOnlyDictionary<string, float> Scales()
    {
        var result = new SortedDictionary<string, float>(StringComparer.Ordinal);
        foreach (var (slot, threshold) in Thresholds())
        {
            result[slot] = threshold > 0 ? threshold / 127f : 1f;
        }

        return result;
    }

    private protected abstract object NewState(string slot, string kind);

    private protected abstract void Add(object state, string slot, string kind, Tensor value);

    private protected abstract double Threshold(object state);

    /// <summary>(min, max) of a tensor in one pass, as doubles; non-finite values are an error naming the slot.</summary>
    private protected static (double Min, double Max) MinMax(Tensor value, string slot)
    {
        var (min, max) = value.aminmax();
        var (lo, hi) = (min.to(ScalarType.Float64).item<double>(), max.to(ScalarType.Float64).item<double>());
        if (!double.IsFinite(lo) || !double.IsFinite(hi))
        {
            throw new ArgumentException($"calibration slot '{slot}': the activation has non-finite values (range [{lo}, {hi}])");
        }

        return (lo, hi);
    }
}

/// <summary>Naive calibration: the threshold is max |x| over every batch seen.</summary>
public sealed class MinMaxCollector : CalibrationCollector
{
    private sealed class State
    {
        public double MaxAbs;
    }

    private protected override object NewState(string slot, string kind) => new State();

    private protected override void Add(object slotState, string slot, string kind, Tensor value)
    {
        var state = (State)slotState;
        var (min, max) = MinMax(value, slot);
        state.MaxAbs = Math.Max(state.MaxAbs, Math.Max(-min, max));
    }

    private protected override double Threshold(object state) => ((State)state).MaxAbs;
}

/// <summary>GluonNLP's BertLayerCollector: values of long-tailed kinds (by default GELU and LayerNorm outputs) are
/// clipped to [clipMin, clipMax] before taking their min/max, so a handful of huge activations does not stretch the
/// scale; every other kind is plain min/max. The threshold is max(|min|, |max|) (symmetric).</summary>
public sealed class CustomizeCollector : CalibrationCollector
{
    public const float DefaultClipMin = -50f, DefaultClipMax = 10f;

    private readonly IReadOnlyDictionary<string, (float Min, float Max)> _clip;

    /// <summary>GluonNLP's defaults: gelu_output and layer_norm_output clipped to [-50, 10].</summary>
    public CustomizeCollector()
        : this(DefaultClipMin, DefaultClipMax, ActivationKinds.GeluOutput, ActivationKinds.LayerNormOutput)
    {
    }

    /// <summary>One clip range for the given kinds.</summary>
    public CustomizeCollector(float clipMin, float clipMax, params string[] clippedKinds)
        : this(clippedKinds.ToDictionary(k => k, _ => (clipMin, clipMax), StringComparer.Ordinal))
    {
    }

    /// <summary>A clip range per kind; kinds not listed are not clipped.</summary>
    public CustomizeCollector(IReadOnlyDictionary<string, (float Min, float Max)> clipRanges)
    {
        ArgumentNullException.ThrowIfNull(clipRanges);
        foreach (var (kind, (min, max)) in clipRanges)
        {
            if (!(min <= max) || float.IsNaN(min) || float.IsNaN(max))
            {
                throw new ArgumentException($"CustomizeCollector: the clip range of kind '{kind}' is [{min}, {max}]; it needs min ≤ max", nameof(clipRanges));
            }
        }

        _clip = new Dictionary<string, (float, float)>(clipRanges, StringComparer.Ordinal);
    }

    public IReadOnlyDictionary<string, (float Min, float Max)> ClipRanges => _clip;

    private sealed class State
    {
        public double Min = double.PositiveInfinity, Max = double.NegativeInfinity;
    }

    private protected override object NewState(string slot, string kind) => new State();

    private protected override void Add(object slotState, string slot, string kind, Tensor value)
    {
        var state = (State)slotState;
        var (min, max) = MinMax(value, slot);
        if (_clip.TryGetValue(kind, out var clip))
        {
            min = Math.Clamp(min, clip.Min, clip.Max);
            max = Math.Clamp(max, clip.Min, clip.Max);
        }

        state.Min = Math.Min(state.Min, min);
        state.Max = Math.Max(state.Max, max);
    }

    private protected override double Threshold(object slotState)
    {
        var state = (State)slotState;
        return Math.Max(Math.Abs(state.Min), Math.Abs(state.Max));
    }
}

/// <summary>A collector whose per-slot state is a histogram of |x| over every batch (percentile, entropy); subclasses
/// read the threshold off the histogram.</summary>
public abstract class HistogramCollector : CalibrationCollector
{
    private protected HistogramCollector(int bins) => BinCount = bins;

    public int BinCount { get; }

    private protected sealed override object NewState(string slot, string kind) => new AbsHistogram(BinCount);

    private protected sealed override void Add(object state, string slot, string kind, Tensor value)
    {
        var (min, max) = MinMax(value, slot);
        ((AbsHistogram)state).Add(value, Math.Max(-min, max));
    }

    private protected sealed override double Threshold(object state)
    {
        var histogram = (AbsHistogram)state;
        return histogram.Range == 0 ? 0 : Threshold(histogram);
    }

    /// <summary>The threshold from a histogram with a non-zero range.</summary>
    private protected abstract double Threshold(AbsHistogram histogram);
}
