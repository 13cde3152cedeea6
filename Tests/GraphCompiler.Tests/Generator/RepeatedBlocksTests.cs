using GraphCompiler.Generator;
using GraphCompiler.Generator.Emit;
using GraphCompiler.Generator.Ir;
using GraphCompiler.Registry;
using Xunit;

namespace GraphCompiler.Tests.Generator;

/// <summary>Which instances of a repeated block the emitter calls as one method: only consecutive instances that are the
/// same computation (ops, attributes, types, scopes below the instance, sources, and where they read and leave values).</summary>
public class RepeatedBlocksTests
{
    private static readonly TensorType Hidden = TensorType.Of(ElementType.F32, Dim.Batch, Dim.Seq, Dim.Of(8));

    private static Node Value(int id, string op, string scope, params int[] inputs) =>
        new(id, op, inputs.ToEquatableArray(), Hidden, EquatableArray<Attr>.Empty, scope, "Blocks.cs:3");

    /// <summary>x (0) and a parameter per layer (1, 2, 3) in; each layer: h = gelu(x + p), in scope layer.N.ffn.</summary>
    private static (List<Node> Compute, Dictionary<int, Node> ById, Dictionary<int, int> LastUse) Layers(string thirdOp = OpNames.Gelu)
    {
        var inputs = new[] { Value(0, OpNames.Input, ""), Value(1, OpNames.Param, ""), Value(2, OpNames.Param, ""), Value(3, OpNames.Param, "") };
        var compute = new List<Node>
        {
            Value(10, OpNames.Add, "layer.0.ffn", 0, 1), Value(11, OpNames.Gelu, "layer.0", 10),
            Value(20, OpNames.Add, "layer.1.ffn", 11, 2), Value(21, OpNames.Gelu, "layer.1", 20),
            Value(30, OpNames.Add, "layer.2.ffn", 21, 3), Value(31, thirdOp, "layer.2", 30),
            Value(40, OpNames.Tanh, "head", 31),
        };
        var lastUse = new Dictionary<int, int>();
        for (var i = 0; i < compute.Count; i++)
        {
            foreach (var input in compute[i].Inputs)
            {
                lastUse[input] = i;
            }
        }

        return (compute, inputs.Concat(compute).ToDictionary(n => n.Id), lastUse);
    }

    [Fact]
    public void IdenticalLayersAreOneMethodWithTheirOwnArguments()
    {
        var (compute, byId, lastUse) = Layers();
        var (prefix, runs) = Assert.Single(RepeatedBlocks.Find(compute, byId, lastUse, new HashSet<int> { 40 }));
        Assert.Equal("layer", prefix);
        Assert.Equal(new[] { "layer.0", "layer.1", "layer.2" }, runs.Select(r => r.Instance));
        Assert.Equal(new[] { 0, 1 }, runs[0].Args);
        Assert.Equal(new[] { 21, 3 }, runs[2].Args);
        Assert.Equal(new[] { 31 }, runs[2].Results);
        Assert.Equal("Layer", RepeatedBlocks.MethodName(prefix));
    }

    [Fact]
    public void ALayerThatDiffersStaysInline()
    {
        var (compute, byId, lastUse) = Layers(thirdOp: OpNames.Tanh);
        var (_, runs) = Assert.Single(RepeatedBlocks.Find(compute, byId, lastUse, new HashSet<int> { 40 }));
        Assert.Equal(new[] { "layer.0", "layer.1" }, runs.Select(r => r.Instance));
    }

    [Fact]
    public void AValueKeptForLaterIsReturnedByEveryInstance()
    {
        // The training forward keeps values for the backward: each instance returns its own, in the same position.
        var (compute, byId, lastUse) = Layers();
        var (_, runs) = Assert.Single(RepeatedBlocks.Find(compute, byId, lastUse, new HashSet<int> { 40, 10, 20, 30 }));
        Assert.Equal(new[] { new[] { 10, 11 }, new[] { 20, 21 }, new[] { 30, 31 } }, runs.Select(r => r.Results.ToArray()));
    }

    [Fact]
    public void AValueKeptFromOneInstanceOnlyBreaksTheStretch()
    {
        var (compute, byId, lastUse) = Layers();
        Assert.Empty(RepeatedBlocks.Find(compute, byId, lastUse, new HashSet<int> { 40, 20 }));
    }
}
