using GraphCompiler;
using static GraphCompiler.Ops;

namespace GraphCompiler.Tests.Declarations;

// The int8 tests' model (Tests/GraphCompiler.Tests/Runtime/QuantizationTests.cs); its generated source is also a
// snapshot (Snapshots/QuantizedClassifier.verified.cs), so this file holds everything it applies.

/// <summary>A post-LN encoder layer for the int8 tests.</summary>
[Block]
public partial class QuantEncoderLayer
{
    [Hyper] public int Hidden;
    [Hyper] public int Heads;
    [Hyper] public int Ffn;

    [Forward]
    public Expr Forward(Expr x, Expr mask)
    {
        var q = Linear(x, Hidden, Hidden, "attention.self.query");
        var k = Linear(x, Hidden, Hidden, "attention.self.key");
        var v = Linear(x, Hidden, Hidden, "attention.self.value");
        var context = Attention(q, k, v, mask, Heads, 0.1);
        var attended = Dropout(Linear(context, Hidden, Hidden, "attention.output.dense"), 0.1);
        var h = LayerNorm(x + attended, Hidden, 1e-12, "attention.output.LayerNorm");
        var up = Gelu(Linear(h, Hidden, Ffn, "intermediate.dense"));
        var down = Dropout(Linear(up, Ffn, Hidden, "output.dense"), 0.1);
        return LayerNorm(h + down, Hidden, 1e-12, "output.LayerNorm");
    }
}

/// <summary>A small BERT pair classifier with an int8 variant: embeddings, two encoder layers, pooler, classifier.
/// Returns (sequence output, logits). The last layer's FFN output GEMM stays fp32 by option; the pooler and the
/// classifier (batch rows only) by rule.</summary>
[Model("num_quantized")]
[StaticShapes(Batch = 4, SeqLens = new[] { 8, 16 })]
[Quantize(Exclude = new[] { "encoder.layer.1.output." })]
public partial class QuantizedClassifier
{
    [Hyper] public int Vocab = 50;
    [Hyper] public int Hidden = 32;

    [Forward]
    public (Expr Sequence, Expr Logits) Forward(
        [Input(DType.Int64, "batch", "seq")] Expr inputIds,
        [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var words = Embedding(inputIds, Vocab, Hidden, "embeddings.word_embeddings");
        var types = Embedding(tokenTypes, 2, Hidden, "embeddings.token_type_embeddings");
        var positions = PositionEmbedding(inputIds, 16, Hidden, "embeddings.position_embeddings");
        var x = LayerNorm(words + types + positions, Hidden, 1e-12, "embeddings.LayerNorm");
        var mask = LengthMask(validLength, inputIds);
        var sequence = Repeat(2, "encoder.layer", new QuantEncoderLayer { Hidden = Hidden, Heads = 4, Ffn = 4 * Hidden }, x, mask);
        var pooled = Tanh(Linear(Select(sequence, 1, 0), Hidden, Hidden, "pooler.dense"));
        return (sequence, Linear(Dropout(pooled, 0.1), Hidden, 2, "classifier"));
    }
}
