using System.Globalization;
using System.Text.Json;

namespace GraphCompiler.Runtime.Symbol;

/// <summary>Reads prefix-symbol.json into a <see cref="SymbolGraph"/> and validates it: format and version, every node
/// well-formed with an op the interpreter runs, ids unique, inputs present and in topological order (a cycle is named
/// as such), arguments and heads pointing at nodes. Every problem is a <see cref="SymbolFileException"/> naming the file
/// and the node.</summary>
public static class SymbolFile
{
    /// <param name="knownOps">The ops a node may have; by default what <see cref="SymbolInterpreter"/> runs (a reader
    /// that only translates the graph, e.g. to ONNX, may pass its own set).</param>
    public static SymbolGraph Load(string path, IReadOnlySet<string>? knownOps = null)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new SymbolFileException(path, null, "cannot read: " + ex.Message, ex);
        }

        return Parse(text, path, knownOps);
    }

    /// <param name="sourceName">The file (or e.g. "minilm.SymbolJson") errors name.</param>
    /// <param name="knownOps">As for <see cref="Load"/>.</param>
    public static SymbolGraph Parse(string text, string sourceName, IReadOnlySet<string>? knownOps = null)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false });
        }
        catch (JsonException ex)
        {
            var where = ex.LineNumber is { } line ? $" at line {line + 1}, position {(ex.BytePositionInLine ?? 0) + 1}" : "";
            throw new SymbolFileException(sourceName, null, $"malformed JSON{where}: {ex.Message}", ex);
        }

        using (doc)
        {
            var graph = new Reader(sourceName).Graph(doc.RootElement);
            Validate(graph, sourceName, knownOps);
            return graph;
        }
    }

    /// <summary>The graph-level checks (what <see cref="Parse"/> runs after reading): unknown ops, duplicate ids,
    /// dangling inputs, cycles and order, arguments and heads.</summary>
    public static void Validate(SymbolGraph graph, string sourceName, IReadOnlySet<string>? knownOps = null)
    {
        knownOps ??= SymbolInterpreter.SupportedOps;
        var byId = new Dictionary<int, SymbolNode>();
        foreach (var node in graph.Nodes)
        {
            if (!byId.TryAdd(node.Id, node))
            {
                throw new SymbolFileException(sourceName, SymbolTypes.Describe(node), $"duplicate id {node.Id} (also {SymbolTypes.Describe(byId[node.Id])})");
            }

            if (!knownOps.Contains(node.Op))
            {
                throw new SymbolFileException(sourceName, SymbolTypes.Describe(node),
                    $"unknown op '{node.Op}': the known ops are {string.Join(", ", knownOps.Order(StringComparer.Ordinal))}");
            }

            if (node.Op is SymbolInterpreter.Input or SymbolInterpreter.Param && (!node.Attrs.TryGetValue("name", out var name) || name.Length == 0))
            {
                throw new SymbolFileException(sourceName, SymbolTypes.Describe(node), $"{node.Op} node without a \"name\" attribute");
            }
        }

        foreach (var node in graph.Nodes)
        {
            foreach (var input in node.Inputs.Where(i => !byId.ContainsKey(i)))
            {
                throw new SymbolFileException(sourceName, SymbolTypes.Describe(node), $"input {input} refers to no node (dangling input)");
            }
        }

        CheckOrder(graph, byId, sourceName);

        var argumentNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var argument in graph.Arguments)
        {
            if (!byId.TryGetValue(argument.Node, out var node) || node.Op != SymbolInterpreter.Input)
            {
                throw new SymbolFileException(sourceName, $"argument '{argument.Name}'",
                    node is null ? $"points at node {argument.Node}, which does not exist" : $"points at {SymbolTypes.Describe(node)}, which is not an input node");
            }

            if (!argumentNames.Add(argument.Name))
            {
                throw new SymbolFileException(sourceName, $"argument '{argument.Name}'", "appears twice");
            }

            if (node.Attrs["name"] != argument.Name)
            {
                throw new SymbolFileException(sourceName, $"argument '{argument.Name}'", $"points at {SymbolTypes.Describe(node)}, whose name differs");
            }
        }

        foreach (var input in graph.Nodes.Where(n => n.Op == SymbolInterpreter.Input && graph.Arguments.All(a => a.Node != n.Id)))
        {
            throw new SymbolFileException(sourceName, SymbolTypes.Describe(input), "input node that no argument names");
        }

        if (graph.Buckets.Count == 0)
        {
            throw new SymbolFileException(sourceName, null, "no buckets: the graph names no (batch, seq) shape to run in");
        }

        if (graph.Heads.Count == 0)
        {
            throw new SymbolFileException(sourceName, null, "no heads: the graph has no outputs");
        }

        foreach (var head in graph.Heads.Where(h => !byId.ContainsKey(h.Node)))
        {
            throw new SymbolFileException(sourceName, $"head '{head.Name}'", $"points at node {head.Node}, which does not exist");
        }
    }

    /// <summary>Nodes must come after their inputs. When one does not, a depth-first search tells a cycle (reported
    /// with the nodes on it) from mere disorder.</summary>
    private static void CheckOrder(SymbolGraph graph, Dictionary<int, SymbolNode> byId, string sourceName)
    {
        var seen = new HashSet<int>();
        SymbolNode? disordered = null;
        var laterInput = 0;
        foreach (var node in graph.Nodes)
        {
            var later = node.Inputs.Where(i => !seen.Contains(i)).Select(i => (int?)i).FirstOrDefault();
            if (later is not null && disordered is null)
            {
                disordered = node;
                laterInput = later.Value;
            }

            seen.Add(node.Id);
        }

        if (disordered is null)
        {
            return;
        }

        var cycle = FindCycle(graph, byId);
        if (cycle is not null)
        {
            throw new SymbolFileException(sourceName, SymbolTypes.Describe(cycle[0]),
                "cycle: " + string.Join(" → ", cycle.Append(cycle[0]).Select(SymbolTypes.Describe)) + ": each feeds the next, so none of them can be computed first");
        }

        throw new SymbolFileException(sourceName, SymbolTypes.Describe(disordered),
            $"reads {SymbolTypes.Describe(byId[laterInput])}, which comes after it: nodes must be in topological order");
    }

    /// <summary>A cycle as the nodes on it, each an input of the one after it; null when the graph is acyclic.</summary>
    private static List<SymbolNode>? FindCycle(SymbolGraph graph, Dictionary<int, SymbolNode> byId)
    {
        // Iterative three-colour DFS along input edges (deep graphs must not overflow the stack).
        var state = new Dictionary<int, int>(); // absent: unvisited, 1: on the stack, 2: done
        foreach (var root in graph.Nodes)
        {
            if (state.ContainsKey(root.Id))
            {
                continue;
            }

            var stack = new List<(SymbolNode Node, int Next)> { (root, 0) };
            state[root.Id] = 1;
            while (stack.Count > 0)
            {
                var (node, next) = stack[^1];
                if (next == node.Inputs.Count)
                {
                    state[node.Id] = 2;
                    stack.RemoveAt(stack.Count - 1);
                    continue;
                }

                stack[^1] = (node, next + 1);
                var input = byId[node.Inputs[next]];
                if (!state.TryGetValue(input.Id, out var s))
                {
                    state[input.Id] = 1;
                    stack.Add((input, 0));
                }
                else if (s == 1)
                {
                    // The stack from the input to here: each node is read by the next deeper one; list them in data order.
                    var start = stack.FindIndex(f => f.Node.Id == input.Id);
                    var onCycle = stack.Skip(start).Select(f => f.Node).ToList();
                    onCycle.Reverse();
                    return onCycle;
                }
            }
        }

        return null;
    }

    /// <summary>JSON → records, every shape problem named by where it is.</summary>
    private sealed class Reader(string source)
    {
        public SymbolGraph Graph(JsonElement root)
        {
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Error(null, $"not a symbol file: the top level is a JSON {Kind(root)}, not an object");
            }

            var format = root.TryGetProperty("format", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString()! : null;
            if (format != SymbolGraph.FormatName)
            {
                throw Error(null, format is null
                    ? $"not a symbol file: no \"format\" (expected \"{SymbolGraph.FormatName}\")"
                    : $"unknown format '{format}' (expected \"{SymbolGraph.FormatName}\")");
            }

            if (!root.TryGetProperty("version", out var v) || v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var version))
            {
                throw Error(null, "\"version\" must be an integer");
            }

            if (version != SymbolGraph.FormatVersion)
            {
                throw Error(null, $"version {version} is not supported: this runtime reads {SymbolGraph.FormatName} version {SymbolGraph.FormatVersion}");
            }

            var buckets = Array(root, "buckets", null).Select((b, i) =>
            {
                var where = $"bucket {i}";
                var batch = Int(b, "batch", where);
                var seq = Int(b, "seq", where);
                if (batch <= 0 || seq < 0)
                {
                    throw Error(where, $"batch {batch} × seq {seq} is not a shape");
                }

                return new SymbolBucket(batch, seq);
            }).ToList();
            var nodes = Array(root, "nodes", null).Select(Node).ToList();
            var arguments = Array(root, "arguments", null).Select((a, i) => new SymbolArgument(String(a, "name", $"argument {i}"), Int(a, "node", $"argument {i}"))).ToList();
            var heads = Array(root, "heads", null).Select((h, i) => new SymbolHead(String(h, "name", $"head {i}"), Int(h, "node", $"head {i}"))).ToList();
            return new SymbolGraph(format, version, String(root, "model", null), String(root, "precision", null), buckets, arguments, nodes, heads);
        }

        private SymbolNode Node(JsonElement e, int index)
        {
            var where = $"nodes[{index}]";
            if (e.ValueKind != JsonValueKind.Object)
            {
                throw Error(where, $"a node must be an object, not a {Kind(e)}");
            }

            var id = Int(e, "id", where);
            var op = String(e, "op", where);
            var scope = e.TryGetProperty("scope", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            where = SymbolTypes.Describe(new SymbolNode(id, op, System.Array.Empty<int>(), new Dictionary<string, string>(), new SymbolType("", System.Array.Empty<string>()), scope));
            var inputs = Array(e, "inputs", where).Select((x, i) => x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out var n)
                ? n
                : throw Error(where, $"inputs[{i}] must be a node id, not {x.GetRawText()}")).ToList();

            if (!e.TryGetProperty("attrs", out var attrsEl) || attrsEl.ValueKind != JsonValueKind.Object)
            {
                throw Error(where, "\"attrs\" must be an object of strings");
            }

            var attrs = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var a in attrsEl.EnumerateObject())
            {
                if (a.Value.ValueKind != JsonValueKind.String)
                {
                    throw Error(where, $"attribute '{a.Name}' must be a string (canonical IR text), not {a.Value.GetRawText()}");
                }

                if (!attrs.TryAdd(a.Name, a.Value.GetString()!))
                {
                    throw Error(where, $"attribute '{a.Name}' appears twice");
                }
            }

            if (attrs.TryGetValue("name", out var name) && op is SymbolInterpreter.Param or SymbolInterpreter.Input)
            {
                where = $"node {id.ToString(CultureInfo.InvariantCulture)} ({op} '{name}')";
            }

            if (!e.TryGetProperty("type", out var typeEl) || typeEl.ValueKind != JsonValueKind.Object)
            {
                throw Error(where, "\"type\" must be an object {dtype, shape}");
            }

            var dtype = String(typeEl, "dtype", where);
            if (!SymbolTypes.TryScalarType(dtype, out _))
            {
                throw Error(where, $"unknown dtype '{dtype}' (known: {string.Join(", ", SymbolTypes.DTypeNames)})");
            }

            var shape = Array(typeEl, "shape", where).Select(d => d.ValueKind == JsonValueKind.String && SymbolTypes.IsDim(d.GetString()!)
                ? d.GetString()!
                : throw Error(where, $"bad dimension {d.GetRawText()} in the shape: a dimension is \"batch\", \"seq\" or a non-negative integer as text")).ToList();
            return new SymbolNode(id, op, inputs, attrs, new SymbolType(dtype, shape), scope);
        }

        private List<JsonElement> Array(JsonElement e, string key, string? where)
        {
            if (!e.TryGetProperty(key, out var a) || a.ValueKind != JsonValueKind.Array)
            {
                throw Error(where, $"\"{key}\" must be an array");
            }

            return a.EnumerateArray().ToList();
        }

        private int Int(JsonElement e, string key, string? where)
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(key, out var v) || v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var n))
            {
                throw Error(where, $"\"{key}\" must be an integer");
            }

            return n;
        }

        private string String(JsonElement e, string key, string? where)
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(key, out var v) || v.ValueKind != JsonValueKind.String)
            {
                throw Error(where, $"\"{key}\" must be a string");
            }

            return v.GetString()!;
        }

        private static string Kind(JsonElement e) => e.ValueKind.ToString().ToLowerInvariant();

        private SymbolFileException Error(string? where, string problem) => new(source, where, problem);
    }
}
