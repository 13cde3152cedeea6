using GraphCompiler.Runtime.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Symbol;

/// <summary>A model imported from prefix-symbol.json + prefix-0000.params without its source (MXNet's
/// <c>SymbolBlock.imports</c>): an inference module that interprets the graph node by node with the kernels the
/// generated code calls. Each run picks the bucket from the inputs' shapes, checks the inputs as the generated forward
/// does (<see cref="ShapeGuard"/>), and frees every intermediate after its last use.</summary>
public sealed class SymbolBlock : nn.Module<Tensor[], Tensor[]>
{
    private readonly int[] _argumentOrder; // position i of Run's inputs → index into Graph.Arguments
    private readonly Step[] _steps;
    private readonly int[] _inputSlots; // per argument, its node's slot
    private readonly (int Slot, string Tensor)[] _paramSlots;
    private readonly int[] _headSlots;
    private readonly int _slotCount;
    private readonly string _source;
    private readonly (int Argument, int Axis) _batchFrom;
    private readonly (int Argument, int Axis)? _seqFrom;

    /// <summary>A computing node: its kernel, input slots, the slots whose last read it is, and its declared type.</summary>
    private sealed record Step(SymbolNode Node, SymbolKernel Kernel, int[] Inputs, int Slot, int[] Frees, ScalarType DType);

    private SymbolBlock(SymbolGraph graph, string source, IReadOnlyList<string> inputNames, IReadOnlyDictionary<string, Tensor> tensors)
        : base(graph.Model)
    {
        Graph = graph;
        _source = source;
        InputNames = inputNames.ToList();
        _argumentOrder = inputNames.Select(n => graph.Arguments.ToList().FindIndex(a => a.Name == n)).ToArray();

        var slotOf = new Dictionary<int, int>();
        foreach (var node in graph.Nodes)
        {
            slotOf[node.Id] = slotOf.Count;
        }

        _slotCount = slotOf.Count;
        _inputSlots = graph.Arguments.Select(a => slotOf[a.Node]).ToArray();
        _paramSlots = graph.Nodes.Where(n => n.Op == SymbolInterpreter.Param).Select(n => (slotOf[n.Id], n.Attrs["name"])).ToArray();
        _headSlots = graph.Heads.Select(h => slotOf[h.Node]).ToArray();

        // Liveness as the generated code has it: inputs, params and heads are never freed; anything else right after
        // the step that reads it last.
        var compute = graph.Nodes.Where(n => n.Op is not (SymbolInterpreter.Input or SymbolInterpreter.Param)).ToList();
        var lastUse = new Dictionary<int, int>();
        for (var i = 0; i < compute.Count; i++)
        {
            foreach (var input in compute[i].Inputs)
            {
                lastUse[input] = i;
            }
        }

        var keep = new HashSet<int>(graph.Nodes.Where(n => n.Op is SymbolInterpreter.Input or SymbolInterpreter.Param).Select(n => n.Id).Concat(graph.Heads.Select(h => h.Node)));
        _steps = compute.Select((node, i) => new Step(
            node,
            SymbolInterpreter.Compile(node, source),
            node.Inputs.Select(id => slotOf[id]).ToArray(),
            slotOf[node.Id],
            node.Inputs.Distinct().Where(id => lastUse[id] == i && !keep.Contains(id)).Select(id => slotOf[id]).ToArray(),
            SymbolTypes.ToScalarType(node.Type.DType))).ToArray();

        // The bucket comes from the first argument with a batch dim and the first with a seq dim, as in the generated forward.
        var batchFrom = Locate(SymbolTypes.Batch);
        _batchFrom = batchFrom ?? throw new SymbolFileException(source, null, "no argument has a \"batch\" dimension, so no bucket can be chosen");
        _seqFrom = Locate(SymbolTypes.Seq);

        foreach (var (name, tensor) in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            if (tensor.is_floating_point())
            {
                register_parameter(name, new Parameter(tensor, requires_grad: false));
            }
            else
            {
                register_buffer(name, tensor); // int8 weights, scales kept as integers, …
            }
        }

        eval();

        (int, int)? Locate(string symbol)
        {
            for (var a = 0; a < graph.Arguments.Count; a++)
            {
                var axis = graph.Nodes.First(n => n.Id == graph.Arguments[a].Node).Type.Shape.ToList().IndexOf(symbol);
                if (axis >= 0)
                {
                    return (a, axis);
                }
            }

            return null;
        }
    }

    /// <summary>The graph being interpreted.</summary>
    public SymbolGraph Graph { get; }

    /// <summary>The inputs <see cref="Run"/> takes, in this order (the names given to <see cref="Imports"/>).</summary>
    public IReadOnlyList<string> InputNames { get; }

    /// <summary>The outputs <see cref="Run"/> returns, in this order.</summary>
    public IReadOnlyList<string> OutputNames => Graph.Heads.Select(h => h.Name).ToList();

    public IReadOnlyList<StaticShapeBucket> Buckets => Graph.Buckets.Select(b => new StaticShapeBucket(b.Batch, b.Seq)).ToList();

    /// <summary>Loads a symbol file and its params (safetensors, as <see cref="ModelExport.Export"/> writes them).
    /// <paramref name="inputNames"/> must be the graph's argument names, in the order <see cref="Run"/> will take
    /// them; every tensor a param node names must be in the params file with the node's dtype and shape, and nothing
    /// else may be.</summary>
    public static SymbolBlock Imports(string symbolFile, string[] inputNames, string paramsFile, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(symbolFile);
        ArgumentNullException.ThrowIfNull(inputNames);
        ArgumentNullException.ThrowIfNull(paramsFile);
        var graph = SymbolFile.Load(symbolFile);
        CheckInputNames(graph, inputNames, symbolFile);
        TensorSet set;
        try
        {
            set = SafeTensors.Read(paramsFile);
        }
        catch (WeightFileException ex)
        {
            throw new SymbolFileException(paramsFile, null, ex.Problem, ex);
        }

        using (set)
        {
            if (set.Metadata.TryGetValue("model", out var model) && model != graph.Model)
            {
                throw new SymbolFileException(paramsFile, null, $"holds the parameters of model '{model}', but {symbolFile} is model '{graph.Model}'");
            }

            SymbolParams.Check(graph, set, paramsFile, allowUnexpected: false);
            var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            try
            {
                foreach (var name in SymbolParams.Names(graph))
                {
                    // A new handle either way: the set disposes its own.
                    var t = set[name];
                    tensors[name] = device is null || (t.device_type == device.type && t.device_index == device.index) ? t.detach() : t.to(device);
                }

                return new SymbolBlock(graph, symbolFile, inputNames, tensors);
            }
            catch
            {
                foreach (var t in tensors.Values)
                {
                    t.Dispose();
                }

                throw;
            }
        }
    }

    private static void CheckInputNames(SymbolGraph graph, string[] inputNames, string source)
    {
        var expected = graph.Arguments.Select(a => a.Name).ToList();
        var ok = inputNames.Length == expected.Count
                 && inputNames.Distinct(StringComparer.Ordinal).Count() == inputNames.Length
                 && inputNames.All(expected.Contains);
        if (!ok)
        {
            var unknown = inputNames.Where(n => !expected.Contains(n)).ToList();
            var missing = expected.Where(n => !inputNames.Contains(n)).ToList();
            var detail = string.Join("; ", new[]
            {
                unknown.Count > 0 ? "unknown: " + string.Join(", ", unknown) : null,
                missing.Count > 0 ? "missing: " + string.Join(", ", missing) : null,
                inputNames.Length != inputNames.Distinct(StringComparer.Ordinal).Count() ? "a name is given twice" : null,
            }.Where(s => s is not null));
            throw new SymbolFileException(source, null,
                $"input names [{string.Join(", ", inputNames)}] do not match the graph's arguments: expected {string.Join(", ", expected)} (in any order); {detail}");
        }
    }

    /// <summary>Runs the graph on inputs given in <see cref="InputNames"/> order; returns one tensor per head.</summary>
    public Tensor[] Run(params Tensor[] inputs) => forward(inputs);

    public override Tensor[] forward(Tensor[] inputs)
    {
        if (inputs.Length != InputNames.Count)
        {
            throw new ArgumentException($"Model '{Graph.Model}' takes {InputNames.Count} inputs ({string.Join(", ", InputNames)}), got {inputs.Length}.", nameof(inputs));
        }

        var byArgument = new Tensor[inputs.Length];
        for (var i = 0; i < inputs.Length; i++)
        {
            byArgument[_argumentOrder[i]] = inputs[i];
        }

        var (batch, seq) = ChooseBucket(byArgument);
        for (var a = 0; a < byArgument.Length; a++)
        {
            var node = Graph.Nodes[_inputSlots[a]];
            ShapeGuard.Check(Graph.Model, Graph.Arguments[a].Name, byArgument[a], SymbolTypes.ToScalarType(node.Type.DType), SymbolTypes.Resolve(node.Type.Shape, batch, seq));
        }

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in named_parameters())
        {
            tensors[name] = p;
        }

        foreach (var (name, b) in named_buffers())
        {
            tensors[name] = b;
        }

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var values = new Tensor?[_slotCount];
        for (var a = 0; a < byArgument.Length; a++)
        {
            values[_inputSlots[a]] = byArgument[a];
        }

        foreach (var (slot, name) in _paramSlots)
        {
            values[slot] = tensors[name];
        }

        foreach (var step in _steps)
        {
            var args = new Tensor[step.Inputs.Length];
            for (var i = 0; i < args.Length; i++)
            {
                args[i] = values[step.Inputs[i]]!;
            }

            values[step.Slot] = Compute(step, args, batch, seq);
            foreach (var dead in step.Frees)
            {
                values[dead]!.Dispose();
                values[dead] = null;
            }
        }

        // A head that is an input or a param, or a second head on one value, goes out as an alias: the caller owns
        // what it gets.
        var returned = new HashSet<int>();
        var outputs = new Tensor[_headSlots.Length];
        for (var h = 0; h < outputs.Length; h++)
        {
            var slot = _headSlots[h];
            var op = Graph.Nodes[slot].Op;
            var value = values[slot]!;
            outputs[h] = (op is SymbolInterpreter.Input or SymbolInterpreter.Param || !returned.Add(slot) ? value.alias() : value).MoveToOuterDisposeScope();
        }

        return outputs;
    }

    /// <summary>One step, its failure or a result that contradicts the node's type named by the node: the file is
    /// not trusted to be consistent the way the compiler's own graphs are.</summary>
    private Tensor Compute(Step step, Tensor[] args, long batch, long seq)
    {
        Tensor result;
        try
        {
            result = step.Kernel(args, batch, seq);
        }
        catch (Exception ex) when (ex is not (SymbolFileException or OutOfMemoryException))
        {
            var inputs = string.Join(", ", args.Select(a => $"{a.dtype}[{string.Join(",", a.shape)}]"));
            throw new SymbolFileException(_source, SymbolTypes.Describe(step.Node), $"{step.Node.Op} failed on inputs ({inputs}): {ex.Message}", ex);
        }

        var shape = SymbolTypes.Resolve(step.Node.Type.Shape, batch, seq);
        if (result.dtype != step.DType || !result.shape.SequenceEqual(shape))
        {
            var actual = $"{result.dtype}[{string.Join(",", result.shape)}]";
            result.Dispose();
            throw new SymbolFileException(_source, SymbolTypes.Describe(step.Node),
                $"computed {actual}, but its type says {SymbolTypes.Describe(step.Node.Type)} = {step.DType}[{string.Join(",", shape)}] in bucket {batch}×{seq}");
        }

        return result;
    }

    private (long Batch, long Seq) ChooseBucket(Tensor[] byArgument)
    {
        static long Size(Tensor t, int axis) => t.shape.Length > axis ? t.shape[axis] : -1;
        var batch = Size(byArgument[_batchFrom.Argument], _batchFrom.Axis);
        var seq = _seqFrom is { } s ? Size(byArgument[s.Argument], s.Axis) : 0L;
        foreach (var bucket in Graph.Buckets)
        {
            if (bucket.Batch == batch && (_seqFrom is null || bucket.Seq == seq))
            {
                return (bucket.Batch, bucket.Seq);
            }
        }

        throw ShapeGuard.NoBucket(Graph.Model, batch, seq, Buckets);
    }
}
