using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Quantization;

/// <summary>Runs a model's calibration forward over a few batches with a collector watching its observation points.</summary>
public static class Calibration
{
    /// <summary>Feeds at most <paramref name="maxBatches"/> batches through <paramref name="forward"/> (which must pass
    /// the observer on to the model's observation points), without gradients and freeing each batch's tensors before
    /// the next, and returns the collector's per-slot scales.</summary>
    public static IReadOnlyDictionary<string, float> Run<TBatch>(IEnumerable<TBatch> batches, int maxBatches, Action<TBatch, IActivationObserver> forward, ICalibrationCollector collector)
    {
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentNullException.ThrowIfNull(forward);
        ArgumentNullException.ThrowIfNull(collector);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatches, 1);
        var seen = 0;
        using (no_grad())
        {
            foreach (var batch in batches)
            {
                if (seen == maxBatches)
                {
                    break;
                }

                using var scope = NewDisposeScope();
                forward(batch, collector);
                seen++;
            }
        }

        if (seen == 0)
        {
            throw new InvalidOperationException("Calibration.Run: the batch sequence is empty; calibration needs at least one batch");
        }

        var scales = collector.Scales();
        if (scales.Count == 0)
        {
            throw new InvalidOperationException($"Calibration.Run: {seen} batch(es) ran but the forward reported no activations; pass the observer to the model's calibration forward");
        }

        return scales;
    }
}
