using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Weights;

/// <summary>How a checkpoint's names meet a model's parameters.</summary>
public sealed class LoadOptions
{
    /// <summary>Maps a checkpoint name to the model's (HF-style) name; null drops the tensor as unexpected.</summary>
    public Func<string, string?> Rename { get; init; } = n => n;

    /// <summary>Parameters that may stay freshly initialised (a new classification head).</summary>
    public Func<string, bool> AllowMissing { get; init; } = _ => false;

    /// <summary>Checkpoint tensors the model has no use for that are fine to ignore (pre-training heads, buffers).</summary>
    public Func<string, bool> IgnoreUnexpected { get; init; } = _ => false;
}

/// <summary>What a load did, by name.</summary>
public sealed record LoadReport(
    string Source,
    IReadOnlyList<string> Loaded,
    IReadOnlyList<string> LeftInitialised,
    IReadOnlyList<string> Ignored,
    TimeSpan Elapsed)
{
    public override string ToString() =>
        $"{Source}: loaded {Loaded.Count} tensors in {Elapsed.TotalMilliseconds:F0} ms" +
        (LeftInitialised.Count > 0 ? $"; freshly initialised: {string.Join(", ", LeftInitialised)}" : "") +
        (Ignored.Count > 0 ? $"; ignored: {string.Join(", ", Ignored)}" : "");
}

/// <summary>A load refused because the checkpoint does not fit the model; nothing was copied.</summary>
public sealed class WeightLoadException : Exception
{
    public WeightLoadException(string source, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched)
        : base(Describe(source, missing, unexpected, mismatched))
    {
        Missing = missing;
        Unexpected = unexpected;
        Mismatched = mismatched;
    }

    public IReadOnlyList<string> Missing { get; }

    public IReadOnlyList<string> Unexpected { get; }

    public IReadOnlyList<string> Mismatched { get; }

    private static string Describe(string source, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched)
    {
        static string List(string what, IReadOnlyList<string> names) =>
            names.Count == 0 ? "" : $"\n  {what} ({names.Count}): {string.Join(", ", names.Take(20))}{(names.Count > 20 ? ", …" : "")}";
        return $"{source} does not fit the model; nothing was loaded." + List("missing", missing) + List("unexpected", unexpected) + List("wrong shape", mismatched);
    }
}

/// <summary>Copies named tensors into a model's parameters. Knows packed parameters (a fused QKV weight is filled from
/// the checkpoint's separate query/key/value tensors). Checks everything before copying anything.</summary>
public static class WeightLoader
{
    private sealed record Slot(string ModelName, Parameter Target, long Offset, long[] Shape);

    public static LoadReport Load(nn.Module module, TensorSet checkpoint, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        var clock = Stopwatch.StartNew();
        var slots = Slots(module);
        var assignments = new List<(Slot Slot, Tensor Tensor)>();
        var unexpected = new List<string>();
        var ignored = new List<string>();
        var mismatched = new List<string>();
        var filled = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in checkpoint.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var target = options.Rename(name);
            if (target is null || !slots.TryGetValue(target, out var slot))
            {
                (options.IgnoreUnexpected(name) ? ignored : unexpected).Add(target is null || target == name ? name : $"{name} (as {target})");
                continue;
            }

            if (!filled.Add(target))
            {
                mismatched.Add($"{target} (given twice, last by {name})");
                continue;
            }

            if (!tensor.shape.SequenceEqual(slot.Shape))
            {
                mismatched.Add($"{target}: checkpoint [{string.Join(", ", tensor.shape)}], model [{string.Join(", ", slot.Shape)}]");
                continue;
            }

            if (!tensor.is_floating_point())
            {
                mismatched.Add($"{target}: checkpoint dtype {tensor.dtype} is not floating point");
                continue;
            }

            assignments.Add((slot, tensor));
        }

        var notFilled = slots.Keys.Where(k => !filled.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var missing = notFilled.Where(k => !options.AllowMissing(k)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0 || mismatched.Count > 0)
        {
            throw new WeightLoadException(checkpoint.Source, missing, unexpected, mismatched);
        }

        using (no_grad())
        {
            foreach (var (slot, tensor) in assignments)
            {
                using var view = slot.Target.narrow(0, slot.Offset, slot.Shape[0]);
                view.copy_(tensor);
            }
        }

        return new LoadReport(checkpoint.Source, assignments.Select(a => a.Slot.ModelName).ToList(), notFilled, ignored, clock.Elapsed);
    }

    /// <summary>The model's parameters under their checkpoint names, packed ones split into their parts.</summary>
    public static IReadOnlyDictionary<string, long[]> CheckpointShapes(nn.Module module) =>
        Slots(module).ToDictionary(kv => kv.Key, kv => kv.Value.Shape, StringComparer.Ordinal);

    /// <summary>The model's parameters as a checkpoint: packed ones split back into their named parts (views).</summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> CheckpointTensors(nn.Module module)
    {
        foreach (var (name, slot) in Slots(module).OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            yield return new(name, slot.Target.detach().narrow(0, slot.Offset, slot.Shape[0]));
        }
    }

    private static Dictionary<string, Slot> Slots(nn.Module module)
    {
        var packs = (module as IGraphModule)?.PackedParameters.ToDictionary(p => p.Name, StringComparer.Ordinal)
                    ?? new Dictionary<string, PackedParameter>(StringComparer.Ordinal);
        var slots = new Dictionary<string, Slot>(StringComparer.Ordinal);
        foreach (var (name, parameter) in module.named_parameters())
        {
            if (packs.TryGetValue(name, out var pack))
            {
                long offset = 0;
                for (var i = 0; i < pack.Parts.Count; i++)
                {
                    var shape = parameter.shape.ToArray();
                    shape[0] = pack.Sizes[i];
                    slots[pack.Parts[i]] = new Slot(pack.Parts[i], parameter, offset, shape);
                    offset += pack.Sizes[i];
                }
            }
            else
            {
                slots[name] = new Slot(name, parameter, 0, parameter.shape.ToArray());
            }
        }

        return slots;
    }
}
