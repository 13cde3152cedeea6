using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Quantization;

/// <summary>What a generated <c>{Model}Int8Module.FromFloat</c> calls: input-scale checks, parameter lookup by name,
/// and weight quantization into the module's buffers.</summary>
public static class Int8Conversion
{
    /// <summary>Every slot needs a finite, positive scale, and every given scale must belong to a slot (a misspelt slot
    /// would otherwise leave its GEMM on a placeholder scale).</summary>
    public static void CheckInputScales(string model, IReadOnlyList<QuantizationSlot> slots, IReadOnlyDictionary<string, float> inputScales)
    {
        foreach (var slot in slots)
        {
            if (!inputScales.TryGetValue(slot.Slot, out var scale))
            {
                throw new ArgumentException(
                    $"Model '{model}': no input scale for slot '{slot.Slot}' ({slot.Kind} into {slot.WeightName}). Give one per entry of " +
                    "QuantizationSlots (calibrate with ForwardObserved), or pass null and run in Dynamic mode.", nameof(inputScales));
            }

            if (!float.IsFinite(scale) || scale <= 0)
            {
                throw new ArgumentException($"Model '{model}': the input scale of slot '{slot.Slot}' is {scale}; it must be finite and positive.", nameof(inputScales));
            }
        }

        var known = new HashSet<string>(slots.Select(s => s.Slot), StringComparer.Ordinal);
        var unknown = inputScales.Keys.Where(k => !known.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException($"Model '{model}': input scales for unknown slots {string.Join(", ", unknown.Select(u => "'" + u + "'"))}; the slots are those of QuantizationSlots.", nameof(inputScales));
        }
    }

    /// <summary>The source module's parameters by name.</summary>
    public static Dictionary<string, Tensor> Parameters(nn.Module source) =>
        source.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter, StringComparer.Ordinal);

    /// <summary>Where the source module's parameters live (the int8 module is created there).</summary>
    public static Device DeviceOf(nn.Module source) => source.parameters().First().device;

    public static Tensor Find(string model, IReadOnlyDictionary<string, Tensor> parameters, string name, params long[] shape)
    {
        if (!parameters.TryGetValue(name, out var tensor))
        {
            throw new ArgumentException($"Model '{model}': the fp32 source has no parameter '{name}'.");
        }

        if (!tensor.shape.SequenceEqual(shape))
        {
            throw new ArgumentException($"Model '{model}': parameter '{name}' has shape [{string.Join(", ", tensor.shape)}], expected [{string.Join(", ", shape)}].");
        }

        return tensor;
    }

    /// <summary>Quantizes <paramref name="weight"/> per output channel into the int8 module's buffers.</summary>
    public static void CopyQuantized(Tensor weight, Tensor values, Tensor scales)
    {
        var (q, s) = Int8Weights.QuantizePerChannel(weight);
        using (q)
        using (s)
        {
            values.copy_(q);
            scales.copy_(s);
        }
    }

    public static InvalidOperationException TrainingNotSupported(string model) =>
        new($"Model '{model}' (int8) is inference-only: it has no backward. Call eval() before forward, and train the fp32 module instead.");

    public static InvalidOperationException NoStaticScales(string model) =>
        new($"Model '{model}' (int8) was built without input scales (FromFloat with null), so it can only run in Dynamic mode; calibrate and call FromFloat with scales for Static mode.");
}
