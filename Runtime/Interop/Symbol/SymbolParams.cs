using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Symbol;

/// <summary>The tensors a symbol graph binds: one per distinct "name" of its param nodes, with the node's dtype and
/// (constant) shape.</summary>
public static class SymbolParams
{
    /// <summary>The tensor names the graph's param nodes bind, in graph order, each once.</summary>
    public static IReadOnlyList<string> Names(SymbolGraph graph) =>
        graph.Nodes.Where(n => n.Op == SymbolInterpreter.Param).Select(n => n.Attrs["name"]).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>Checks named tensors against the graph's param nodes: every one present, with the node's dtype and
    /// shape; with <paramref name="allowUnexpected"/> false, no others. Missing and unexpected tensors are listed
    /// together; errors name <paramref name="file"/> and the tensor.</summary>
    public static void Check(SymbolGraph graph, IReadOnlyDictionary<string, Tensor> tensors, string file, bool allowUnexpected)
    {
        var wanted = new Dictionary<string, SymbolNode>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes.Where(n => n.Op == SymbolInterpreter.Param))
        {
            var name = node.Attrs["name"];
            if (node.Type.Shape.Any(d => !SymbolTypes.TryConstant(d, out _)))
            {
                throw new SymbolFileException(file, SymbolTypes.Describe(node), $"a parameter's shape must be constant, got {SymbolTypes.Describe(node.Type)}");
            }

            if (wanted.TryGetValue(name, out var other) && SymbolTypes.Describe(other.Type) != SymbolTypes.Describe(node.Type))
            {
                throw new SymbolFileException(file, SymbolTypes.Describe(node),
                    $"binds tensor '{name}' as {SymbolTypes.Describe(node.Type)}, but {SymbolTypes.Describe(other)} binds it as {SymbolTypes.Describe(other.Type)}");
            }

            wanted[name] = node;
        }

        var missing = wanted.Keys.Where(n => !tensors.ContainsKey(n)).ToList();
        var unexpected = allowUnexpected ? new List<string>() : tensors.Keys.Where(n => !wanted.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0)
            {
                parts.Add($"missing {missing.Count} tensor(s) the graph needs: {string.Join(", ", missing)}");
            }

            if (unexpected.Count > 0)
            {
                parts.Add($"{unexpected.Count} unexpected tensor(s) no param node names: {string.Join(", ", unexpected)}");
            }

            throw new SymbolFileException(file, null, string.Join("; ", parts));
        }

        foreach (var (name, node) in wanted)
        {
            var tensor = tensors[name];
            var dtype = SymbolTypes.ToScalarType(node.Type.DType);
            var shape = node.Type.Shape.Select(d => long.Parse(d, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            if (tensor.dtype != dtype)
            {
                throw new SymbolFileException(file, $"tensor '{name}'",
                    $"dtype is {tensor.dtype}, but {SymbolTypes.Describe(node)} wants {node.Type.DType} ({dtype}), as {SymbolTypes.Describe(node.Type)}");
            }

            if (!tensor.shape.SequenceEqual(shape))
            {
                throw new SymbolFileException(file, $"tensor '{name}'",
                    $"shape is [{string.Join(",", tensor.shape)}], but {SymbolTypes.Describe(node)} wants [{string.Join(",", shape)}]");
            }
        }
    }
}
