namespace GraphCompiler.Runtime.Quantization;

/// <summary>An observer that turns what it saw into per-slot symmetric activation scales (threshold / 127).</summary>
public interface ICalibrationCollector : IActivationObserver
{
    IReadOnlyDictionary<string, float> Scales();
}

/// <summary>How a calibration run picks each slot's clipping threshold.</summary>
public enum CalibrationMode
{
    /// <summary>max |x| over all batches (<see cref="MinMaxCollector"/>).</summary>
    Naive,

    /// <summary>A high percentile of |x| (<see cref="PercentileCollector"/>).</summary>
    Percentile,

    /// <summary>The threshold that minimises the KL divergence to the int8 histogram (<see cref="EntropyCollector"/>).</summary>
    Entropy,

    /// <summary>min/max with the long-tailed kinds clipped first, as GluonNLP's BertLayerCollector (<see cref="CustomizeCollector"/>).</summary>
    Customize,
}

/// <summary>The collectors with their default settings, by mode.</summary>
public static class CalibrationCollectors
{
    public static ICalibrationCollector Create(CalibrationMode mode) => mode switch
    {
        CalibrationMode.Naive => new MinMaxCollector(),
        CalibrationMode.Percentile => new PercentileCollector(),
        CalibrationMode.Entropy => new EntropyCollector(),
        CalibrationMode.Customize => new CustomizeCollector(),
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown calibration mode"),
    };

    /// <summary>Parses a mode name as written on a command line or in a calibration table (case-insensitive).</summary>
    public static CalibrationMode ParseMode(string name) =>
        Enum.TryParse<CalibrationMode>(name, ignoreCase: true, out var mode) && Enum.IsDefined(mode)
            ? mode
            : throw new ArgumentException($"unknown calibration mode '{name}' (expected one of: {string.Join(", ", Enum.GetNames<CalibrationMode>()).ToLowerInvariant()})", nameof(name));
}
