using GraphCompiler;
using static GraphCompiler.Ops;

namespace GraphCompiler.Samples.Demo;

/// <summary>A post-LN transformer encoder layer, BERT's shape, with BERT's parameter names.</summary>
[Block]
public partial class EncoderLayer
{
    [Hyper] public int Hidden;
    [Hyper] public int Heads;
    [Hyper] public int Ffn;
    [Hyper] public double Eps = 1e-12;
    [Hyper] public double DropoutP = 0.1;

    [Forward]
    public Expr Forward(Expr x, Expr mask)
    {
        var q = Linear(x, Hidden, Hidden, "attention.self.query");
        var k = Linear(x, Hidden, Hidden, "attention.self.key");
        var v = Linear(x, Hidden, Hidden, "attention.self.value");
        var context = Attention(q, k, v, mask, Heads, DropoutP);
        var attended = Dropout(Linear(context, Hidden, Hidden, "attention.output.dense"), DropoutP);
        var h = LayerNorm(x + attended, Hidden, Eps, "attention.output.LayerNorm");
        var up = Gelu(Linear(h, Hidden, Ffn, "intermediate.dense"));
        var down = Dropout(Linear(up, Ffn, Hidden, "output.dense"), DropoutP);
        return LayerNorm(h + down, Hidden, Eps, "output.LayerNorm");
    }
}

/// <summary>A two-layer encoder with a classification head over the first token.</summary>
[Model("tiny_encoder")]
[StaticShapes(Batch = 2, SeqLens = new[] { 8, 16 })]
public partial class TinyEncoder
{
    [Hyper] public int Vocab = 100;
    [Hyper] public int Hidden = 32;
    [Hyper] public int Classes = 2;

    [Forward]
    public Expr Forward(
        [Input(DType.Int64, "batch", "seq")] Expr inputIds,
        [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var words = Embedding(inputIds, Vocab, Hidden, "embeddings.word_embeddings");
        var types = Embedding(tokenTypes, 2, Hidden, "embeddings.token_type_embeddings");
        var positions = PositionEmbedding(inputIds, 16, Hidden, "embeddings.position_embeddings");
        var x = LayerNorm(words + types + positions, Hidden, 1e-12, "embeddings.LayerNorm");
        var mask = LengthMask(validLength, inputIds);
        x = Repeat(2, "encoder.layer", new EncoderLayer { Hidden = Hidden, Heads = 4, Ffn = 4 * Hidden }, x, mask);
        var pooled = Tanh(Linear(Select(x, 1, 0), Hidden, Hidden, "pooler.dense"));
        return Linear(Dropout(pooled, 0.1), Hidden, Classes, "classifier");
    }
}
