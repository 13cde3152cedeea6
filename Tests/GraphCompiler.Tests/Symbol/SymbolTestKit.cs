using System.Runtime.CompilerServices;
using GraphCompiler.Generator.Ir;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Symbol;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Symbol;

/// <summary>Shared helpers: calling a generated module's forward whatever its arity, inputs that fit a graph's
/// arguments, and asserting a <see cref="SymbolFileException"/>'s file, node and message.</summary>
public static class SymbolTestKit
{
    /// <summary>Calls <c>forward</c> (any number of tensor inputs) and flattens a tuple result.</summary>
    public static Tensor[] Forward(nn.Module module, Tensor[] inputs)
    {
        var forward = module.GetType().GetMethods().Single(m => m.Name == "forward" && m.DeclaringType == module.GetType());
        var result = forward.Invoke(module, inputs.Cast<object>().ToArray())!;
        return result is ITuple tuple ? Enumerable.Range(0, tuple.Length).Select(i => (Tensor)tuple[i]!).ToArray() : new[] { (Tensor)result };
    }

    /// <summary>Random inputs for every argument of the graph in one bucket: floats from N(0, 1); integer vectors
    /// [batch] are valid lengths in 1..seq; other integer inputs are ids 0 or 1 (every test vocabulary has two rows).</summary>
    public static Tensor[] RandomInputs(SymbolGraph graph, StaticShapeBucket bucket, int seed)
    {
        var generator = new TorchSharp.torch.Generator((ulong)seed);
        return graph.Arguments.Select(a =>
        {
            var node = graph.Nodes.Single(n => n.Id == a.Node);
            var shape = SymbolTypes.Resolve(node.Type.Shape, bucket.Batch, bucket.Seq);
            var dtype = SymbolTypes.ToScalarType(node.Type.DType);
            if (is_floating_point(empty(0, dtype)))
            {
                return randn(shape, dtype, generator: generator);
            }

            return node.Type.Shape.SequenceEqual(new[] { "batch" })
                ? randint(1, bucket.Seq + 1, shape, dtype, generator: generator)
                : randint(0, 2, shape, dtype, generator: generator);
        }).ToArray();
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        Assert.Equal(a.shape, b.shape);
        Assert.Equal(a.dtype, b.dtype);
        return a.numel() == 0 ? 0 : (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();
    }

    /// <summary>Asserts the action throws a <see cref="SymbolFileException"/> for <paramref name="file"/> whose message
    /// holds every part (ordinal, case-insensitive); returns it for further checks.</summary>
    public static SymbolFileException AssertFails(Action action, string file, params string[] parts)
    {
        var ex = Assert.Throws<SymbolFileException>(action);
        Assert.Equal(file, ex.File);
        Assert.StartsWith(file + ": ", ex.Message, StringComparison.Ordinal);
        foreach (var part in parts)
        {
            Assert.Contains(part, ex.Message, StringComparison.OrdinalIgnoreCase);
        }

        return ex;
    }

    /// <summary>Node for node: id, op, inputs, every attribute's canonical text, dtype, dims and scope.</summary>
    public static void AssertSameNodes(Graph graph, SymbolGraph symbol)
    {
        Assert.Equal(graph.Nodes.Count, symbol.Nodes.Count);
        for (var i = 0; i < graph.Nodes.Count; i++)
        {
            var (ir, node) = (graph.Nodes[i], symbol.Nodes[i]);
            var where = IrText.PrintNode(ir);
            Assert.True(ir.Id == node.Id, where);
            Assert.True(ir.Op == node.Op, where);
            Assert.True(ir.Inputs.SequenceEqual(node.Inputs), where);
            Assert.True(ir.Attrs.Count == node.Attrs.Count && ir.Attrs.All(a => node.Attrs.TryGetValue(a.Key, out var v) && v == a.Value), where);
            Assert.True(ir.Type.Element.ToString().ToLowerInvariant() == node.Type.DType, where);
            Assert.True(ir.Type.Shape.Select(d => d.ToString()).SequenceEqual(node.Type.Shape), where);
            Assert.True(ir.Scope == (node.Scope ?? ""), where);
        }
    }
}
