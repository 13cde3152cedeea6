using GraphCompiler;
using GraphCompiler.ModelDefs;
using static GraphCompiler.Ops;

namespace GraphCompilerModel;

/// <summary>A two-layer BERT-style encoder (the zoo's BertLayer) over token ids with a classification head on the first token. At build
/// time GraphCompiler compiles it into <c>TextClassifierModule</c>: a TorchSharp module with one static-shape forward
/// (and generated backward) serving the buckets below.</summary>
[Model("text_classifier")]
[StaticShapes(Batch = 4, SeqLens = new[] { 16, 32 })]
public partial class TextClassifier
{
    [Hyper] public int Vocab = 1000;
    [Hyper] public int Hidden = 64;
    [Hyper] public int Heads = 4;
    [Hyper] public int Classes = 3;

    [Forward]
    public Expr Forward(
        [Input(DType.Int64, "batch", "seq")] Expr inputIds,
        [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var words = Embedding(inputIds, Vocab, Hidden, "embeddings.word_embeddings");
        var types = Embedding(tokenTypes, 2, Hidden, "embeddings.token_type_embeddings");
        var positions = PositionEmbedding(inputIds, 32, Hidden, "embeddings.position_embeddings");
        var x = LayerNorm(words + types + positions, Hidden, 1e-12, "embeddings.LayerNorm");
        var mask = LengthMask(validLength, inputIds);
        // GraphCompiler.Zoo's BertLayer (post-LN self-attention + GELU feed-forward, BERT's parameter names), applied
        // twice: "encoder.layer.0", "encoder.layer.1". The generator reads its declaration from the zoo assembly.
        x = Repeat(2, "encoder.layer", new BertLayer { Hidden = Hidden, Heads = Heads, Ffn = 4 * Hidden }, x, mask);
        // The head: tanh pooler over the first token, dropout, a linear classifier.
        var pooled = Tanh(Linear(Select(x, 1, 0), Hidden, Hidden, "pooler.dense"));
        return Linear(Dropout(pooled, 0.1), Hidden, Classes, "classifier");
    }
}
