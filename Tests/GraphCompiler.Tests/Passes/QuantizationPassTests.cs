using GraphCompiler.Generator.Ir;
using GraphCompiler.Registry;
using GraphCompiler.Generator.Passes;
using GraphCompiler.Tests.Infrastructure;
using Xunit;

namespace GraphCompiler.Tests.Passes;

/// <summary>insert_observers and quantize_int8 beyond their goldens: the Exclude option, agreement between the two
/// variants, and the activation kinds.</summary>
public class QuantizationPassTests
{
    private static Graph EncoderLayer() =>
        IrText.Parse(File.ReadAllText(Path.Combine(Snapshot.Root, "Golden/quantize_int8/encoder_layer.before.ir")));

    [Fact]
    public void ObserversAndInt8GemmsAreTheSameSlots()
    {
        var graph = EncoderLayer();
        var observed = new InsertObservers().Run(graph).Nodes.Where(n => n.Op == OpNames.Observe).Select(n => (n.Attr("slot"), n.Attr("kind"))).ToList();
        var int8 = new QuantizeInt8().Run(graph);
        var quantizedWeights = int8.Nodes.Where(n => n.Op is OpNames.QLinear or OpNames.QLinearGelu).Select(n => int8[n.Inputs[1]].Attr("name")).ToList();

        Assert.Equal(new[]
        {
            ("in", "other"),
            ("self.query_key_value", "layer_norm_output"),
            ("output.dense", "attention_output"),
            ("up", "layer_norm_output"),
            ("down", "gelu_output"),
        }, observed.Select(o => (o.Item1!, o.Item2!)));
        Assert.Equal(observed.Select(o => o.Item1 + ".weight"), quantizedWeights);
        Assert.All(quantizedWeights, w => Assert.Equal(ElementType.I8, int8.Parameters.Single(p => p.Attr("name") == w).Type.Element));
        Assert.Equal(TensorType.Of(ElementType.F32), int8.Parameters.Single(p => p.Attr("name") == "up.input_scale").Type);
        Assert.Equal(TensorType.Of(ElementType.F32, Dim.Of(16)), int8.Parameters.Single(p => p.Attr("name") == "up.weight_scale").Type);
    }

    [Fact]
    public void ExcludedPrefixesStayFp32()
    {
        var graph = EncoderLayer();
        // "self.query." names one part of the packed QKV weight: the whole packed GEMM stays fp32.
        var exclude = new[] { "self.query.", "down" };
        var int8 = new InferShapes().Run(new QuantizeInt8(exclude).Run(graph));
        var calibration = new InferShapes().Run(new InsertObservers(exclude).Run(graph));

        Assert.Equal(new[] { "in.weight", "output.dense.weight", "up.weight" },
            int8.Nodes.Where(n => n.Op is OpNames.QLinear or OpNames.QLinearGelu).Select(n => int8[n.Inputs[1]].Attr("name")));
        Assert.Equal(OpNames.Linear, int8[11].Op);
        Assert.Equal(OpNames.Linear, int8[34].Op);
        Assert.Equal(ElementType.F32, int8[9].Type.Element);
        Assert.Equal(new[] { "in", "output.dense", "up" }, calibration.Nodes.Where(n => n.Op == OpNames.Observe).Select(n => n.Attr("slot")));
        Assert.Null(QuantizationPlan.UnmatchedPrefix(graph, exclude));
        Assert.Equal("pooler.", QuantizationPlan.UnmatchedPrefix(graph, new[] { "up", "pooler." }));
    }

    private static Graph Embeddings() =>
        IrText.Parse(File.ReadAllText(Path.Combine(Snapshot.Root, "Golden/quantize_int8/embeddings.before.ir")));

    [Fact]
    public void EmbeddingTablesTurnInt8WithPerRowScalesUnlessExcluded()
    {
        var graph = Embeddings();
        var int8 = new InferShapes().Run(new QuantizeInt8().Run(graph));
        var lookups = int8.Nodes.Where(n => n.Op == OpNames.QEmbedding).ToList();
        Assert.Equal(new[] { "embeddings.word_embeddings.weight", "embeddings.token_type_embeddings.weight" }, lookups.Select(n => int8[n.Inputs[1]].Attr("name")));
        Assert.Equal(TensorType.Of(ElementType.I8, Dim.Of(100), Dim.Of(8)), int8[2].Type);
        Assert.Equal(TensorType.Of(ElementType.F32, Dim.Of(100)), int8.Parameters.Single(p => p.Attr("name") == "embeddings.word_embeddings.weight_scale").Type);
        Assert.All(lookups, n => Assert.Equal(ElementType.F32, n.Type.Element));
        Assert.Equal(ElementType.F32, int8[4].Type.Element); // positions (rows) stay fp32
        Assert.DoesNotContain(new InsertObservers().Run(graph).Nodes, n => n.Op == OpNames.Observe); // tables need no calibration

        var exclude = new[] { "embeddings.word_" };
        var partly = new InferShapes().Run(new QuantizeInt8(exclude).Run(graph));
        Assert.Equal(OpNames.Embedding, partly[3].Op);
        Assert.Equal(ElementType.F32, partly[2].Type.Element);
        Assert.Equal(OpNames.QEmbedding, partly[8].Op);
        Assert.Null(QuantizationPlan.UnmatchedPrefix(graph, exclude));
        Assert.Equal("embeddings.position_", QuantizationPlan.UnmatchedPrefix(graph, new[] { "embeddings.position_" }));
    }

    [Fact]
    public void QEmbeddingShapeRuleRejectsAFloatTableAndAMismatchedScale()
    {
        const string Template = """
            graph bad
              %0 = input {name="ids"} : i64[batch,seq]
              %1 = param {init="normal", name="words.weight"} : TABLE
              %2 = param {init="ones", name="words.weight_scale"} : SCALE
              %3 = qembedding(%0, %1, %2) : f32[batch,seq,8]
              return %3
            """;
        foreach (var (table, scale, message) in new[]
        {
            ("f32[10,8]", "f32[10]", "table must be i8"),
            ("i8[10,8]", "f32[9]", "table_scale f32[9] does not match the table's 10 rows"),
        })
        {
            var graph = IrText.Parse(Template.Replace("TABLE", table).Replace("SCALE", scale));
            var ex = Assert.Throws<InvalidOperationException>(() => new InferShapes().Run(graph));
            Assert.Contains("%3 = qembedding", ex.Message);
            Assert.Contains(message, ex.Message);
        }
    }

    [Fact]
    public void QLinearShapeRuleRejectsAFloatWeight()
    {
        var graph = IrText.Parse("""
            graph bad
              %0 = input {name="x"} : f32[batch,seq,8]
              %1 = param {init="normal", name="fc.weight"} : f32[4,8]
              %2 = param {init="ones", name="fc.weight_scale"} : f32[4]
              %3 = param {init="ones", name="fc.input_scale"} : f32[]
              %4 = qlinear(%0, %1, %2, %3) : f32[batch,seq,4]
              return %4
            """);
        var ex = Assert.Throws<InvalidOperationException>(() => new InferShapes().Run(graph));
        Assert.Contains("%4 = qlinear", ex.Message);
        Assert.Contains("weight must be i8", ex.Message);
    }
}
