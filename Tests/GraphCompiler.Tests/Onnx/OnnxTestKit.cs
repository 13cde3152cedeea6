using System.Reflection;
using GraphCompiler.Generator.Ir;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Symbol;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;
using Tensor = TorchSharp.torch.Tensor;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Onnx;

/// <summary>Symbol graphs from generated modules (until the generator emits them: the module's optimized IR text,
/// parsed and converted), ONNX Runtime sessions and runs on torch tensors, and comparisons.</summary>
public static class OnnxTestKit
{
    /// <summary>The module's optimized forward graph as a SymbolGraph: arguments are its input nodes in order; heads are
    /// "output" (one result) or "output_0", "output_1", … .</summary>
    public static SymbolGraph FromModule(IGraphModule module)
    {
        var graph = IrText.Parse(module.IrText(IrStage.Optimized));
        var nodes = graph.Nodes.Select(n => new SymbolNode(
            n.Id,
            n.Op,
            n.Inputs.ToList(),
            n.Attrs.ToDictionary(a => a.Key, a => a.Value, StringComparer.Ordinal),
            new SymbolType(n.Type.Element.ToString().ToLowerInvariant(), n.Type.Shape.Select(d => d.ToString()).ToList()),
            n.Scope.Length > 0 ? n.Scope : null)).ToList();
        var arguments = graph.Inputs.Select(n => new SymbolArgument(n.Attr("name")!, n.Id)).ToList();
        var heads = graph.Outputs.Select((id, i) => new SymbolHead(graph.Outputs.Count == 1 ? "output" : "output_" + i, id)).ToList();
        return new SymbolGraph(SymbolGraph.FormatName, SymbolGraph.FormatVersion, graph.Name, "f32",
            module.Buckets.Select(b => new SymbolBucket(b.Batch, b.Seq)).ToList(), arguments, nodes, heads);
    }

    public static Dictionary<string, Tensor> Parameters(nn.Module module) =>
        module.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter, StringComparer.Ordinal);

    /// <summary>A session with the settings of the measurements: 2 intra-op threads, every graph optimization.</summary>
    public static InferenceSession Session(string path, int threads = 2)
    {
        using var options = new SessionOptions { IntraOpNumThreads = threads, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        return new InferenceSession(path, options);
    }

    /// <summary>Runs the session on named torch tensors; every output comes back as a float64 torch tensor.</summary>
    public static Dictionary<string, Tensor> Run(InferenceSession session, IEnumerable<(string Name, Tensor Value)> inputs)
    {
        var feeds = inputs.Select(i => ToOrt(i.Name, i.Value)).ToList();
        using var results = session.Run(feeds);
        var outputs = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var r in results)
        {
            var value = (DisposableNamedOnnxValue)r;
            var shape = value.ElementType switch
            {
                TensorElementType.Float => value.AsTensor<float>().Dimensions.ToArray(),
                TensorElementType.Double => value.AsTensor<double>().Dimensions.ToArray(),
                _ => throw new InvalidOperationException($"output '{r.Name}' has element type {value.ElementType}"),
            };
            var dims = shape.Select(d => (long)d).ToArray();
            outputs[r.Name] = value.ElementType == TensorElementType.Float
                ? tensor(value.AsTensor<float>().ToArray(), dims).to(ScalarType.Float64)
                : tensor(value.AsTensor<double>().ToArray(), dims);
        }

        return outputs;
    }

    private static NamedOnnxValue ToOrt(string name, Tensor t)
    {
        var dims = t.shape.Select(d => (int)d).ToArray();
        using var c = t.detach().cpu().contiguous();
        return t.dtype switch
        {
            ScalarType.Float32 => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(c.data<float>().ToArray(), dims)),
            ScalarType.Float64 => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<double>(c.data<double>().ToArray(), dims)),
            ScalarType.Int64 => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<long>(c.data<long>().ToArray(), dims)),
            _ => throw new ArgumentException($"input '{name}' has dtype {t.dtype}"),
        };
    }

    /// <summary>Calls the module's typed forward (one Tensor parameter per model input) by reflection.</summary>
    public static Tensor Forward(nn.Module module, params Tensor[] inputs)
    {
        var method = module.GetType().GetMethod("forward", BindingFlags.Public | BindingFlags.Instance, inputs.Select(_ => typeof(Tensor)).ToArray())
            ?? throw new InvalidOperationException($"{module.GetType().Name} has no forward taking {inputs.Length} tensors");
        return (Tensor)method.Invoke(module, inputs)!;
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();
    }

    public static double Cosine(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var x = a.to(ScalarType.Float64).flatten();
        var y = b.to(ScalarType.Float64).flatten();
        return (x.dot(y) / (x.norm() * y.norm())).item<double>();
    }
}
