using System.Collections;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Weights;

/// <summary>Named tensors read from one weight file; owns (and disposes) them.</summary>
public sealed class TensorSet : IReadOnlyDictionary<string, Tensor>, IDisposable
{
    private readonly Dictionary<string, Tensor> _tensors = new(StringComparer.Ordinal);

    public TensorSet(string source) => Source = source;

    /// <summary>Where the tensors came from (a file path or a resource name), for messages.</summary>
    public string Source { get; }

    /// <summary>Free-form metadata stored with the tensors (safetensors <c>__metadata__</c>).</summary>
    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    public int Count => _tensors.Count;

    public IEnumerable<string> Keys => _tensors.Keys;

    public IEnumerable<Tensor> Values => _tensors.Values;

    public Tensor this[string key] => _tensors[key];

    /// <summary>Adds a tensor; a second tensor with the same name is an error naming the source.</summary>
    public void Add(string name, Tensor tensor)
    {
        if (!_tensors.TryAdd(name, tensor))
        {
            tensor.Dispose();
            throw new WeightFileException(Source, $"tensor '{name}' appears twice");
        }
    }

    public bool ContainsKey(string key) => _tensors.ContainsKey(key);

    public bool TryGetValue(string key, out Tensor value) => _tensors.TryGetValue(key, out value!);

    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() => _tensors.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public void Dispose()
    {
        foreach (var t in _tensors.Values)
        {
            t.Dispose();
        }

        _tensors.Clear();
    }
}
