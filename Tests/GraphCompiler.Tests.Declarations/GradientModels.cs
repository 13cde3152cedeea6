using GraphCompiler;
using static GraphCompiler.Ops;

namespace GraphCompiler.Tests.Declarations;

// Float64 models for the gradient checks (Tests/GraphCompiler.Tests/Training/GradientCheckTests.cs): parameters
// follow the inputs' float64, so the generated backward can be held to 1e-6 against libtorch autograd.

/// <summary>Every differentiable primitive in one graph: element-wise ops with broadcasting, views, matmuls,
/// softmax (plain and masked), LayerNorm, GELU, tanh, dropout, linear with and without bias, concat.</summary>
[Model("grad_ops")]
[StaticShapes(Batch = 2, SeqLens = new[] { 3, 5 })]
public partial class GradOpsModel
{
    [Forward]
    public Expr Forward(
        [Input(DType.Float64, "batch", "seq", "8")] Expr x,
        [Input(DType.Float64, "batch", "seq", "8")] Expr y,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var bias = Param("bias", Init.Normal, 8);
        var gain = Param("gain", Init.Normal, 8);
        var h = Tanh(Linear(x, 8, 8, "fc1")) * y + Add(x, bias) - Mul(y, gain) * 0.5;
        var g = Gelu(Linear(h, 8, 12, "fc2", bias: false));
        var grid = Reshape(g, Batch, Seq, 3, 4);
        var heads = Permute(grid, 0, 2, 1, 3);
        var scores = MatMul(heads, Transpose(heads, -1, -2));
        var probs = Softmax(Scale(scores, 0.3), LengthMask(validLength, x));
        var mixed = Reshape(Transpose(MatMul(probs, heads), 1, 2), Batch, Seq, 12);
        var normed = LayerNorm(Dropout(mixed, 0.2) + g, 12, 1e-5, "norm");
        var first = Reshape(Select(normed, 1, 0), Batch, 1, 12);
        return Concat(-1, Softmax(normed + first), Slice(normed, 2, 2, 9), x / 4);
    }
}

/// <summary>A post-LN encoder layer with dropout everywhere (attention unfused in training).</summary>
[Block]
public partial class GradEncoderLayer
{
    [Hyper] public int Hidden;
    [Hyper] public int Heads;
    [Hyper] public double DropoutP = 0.1;

    [Forward]
    public Expr Forward(Expr x, Expr mask)
    {
        var q = Linear(x, Hidden, Hidden, "attention.self.query");
        var k = Linear(x, Hidden, Hidden, "attention.self.key");
        var v = Linear(x, Hidden, Hidden, "attention.self.value");
        var context = Attention(q, k, v, mask, Heads, DropoutP);
        var h = LayerNorm(x + Dropout(Linear(context, Hidden, Hidden, "attention.output.dense"), DropoutP), Hidden, 1e-12, "attention.output.LayerNorm");
        var f = Linear(Gelu(Linear(h, Hidden, 2 * Hidden, "intermediate.dense")), 2 * Hidden, Hidden, "output.dense");
        return LayerNorm(h + Dropout(f, DropoutP), Hidden, 1e-12, "output.LayerNorm");
    }
}

/// <summary>The gradient models' BERT embeddings (20 words, 16 positions, 2 token types) plus a float64 noise input,
/// which makes the inputs' dtype float64 and gives every token a distinct vector.</summary>
[Block]
public partial class GradEmbeddings
{
    [Hyper] public int Hidden;

    [Forward]
    public Expr Forward(Expr noise, Expr inputIds, Expr tokenTypes)
    {
        var words = Embedding(inputIds, 20, Hidden, "word_embeddings");
        var positions = PositionEmbedding(inputIds, 16, Hidden, "position_embeddings");
        var types = Embedding(tokenTypes, 2, Hidden, "token_type_embeddings");
        return Dropout(LayerNorm(words + positions + types + noise, Hidden, 1e-12, "LayerNorm"), 0.1);
    }
}

/// <summary>A small BERT classifier end to end: embeddings (word, position, type), two encoder layers (the second
/// without attention dropout, so its training graph uses fused SDPA and its generated backward), pooler, classifier.</summary>
[Model("grad_bert")]
[StaticShapes(Batch = 2, SeqLens = new[] { 6, 8, 16 })]
public partial class GradBertModel
{
    [Hyper] public int Hidden = 8;

    [Forward]
    public Expr Forward(
        [Input(DType.Float64, "batch", "seq", "Hidden")] Expr noise,
        [Input(DType.Int64, "batch", "seq")] Expr inputIds,
        [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var x = Apply("embeddings", new GradEmbeddings { Hidden = Hidden }, noise, inputIds, tokenTypes);
        var mask = LengthMask(validLength, inputIds);
        x = Apply("encoder.layer.0", new GradEncoderLayer { Hidden = Hidden, Heads = 2 }, x, mask);
        x = Apply("encoder.layer.1", new GradEncoderLayer { Hidden = Hidden, Heads = 4, DropoutP = 0.0 }, x, mask);
        var pooled = Tanh(Linear(Select(x, 1, 0), Hidden, Hidden, "pooler.dense"));
        return Linear(Dropout(pooled, 0.1), Hidden, 3, "classifier");
    }
}

/// <summary><see cref="GradBertModel"/> pooling the mean of the valid tokens (ModelDefs' MeanPooler: softmax of the
/// reshaped length mask, a batched matmul) instead of the first token.</summary>
[Model("grad_bert_meanpool")]
[StaticShapes(Batch = 2, SeqLens = new[] { 6, 8 })]
public partial class GradBertMeanPoolModel
{
    [Hyper] public int Hidden = 8;

    [Forward]
    public Expr Forward(
        [Input(DType.Float64, "batch", "seq", "Hidden")] Expr noise,
        [Input(DType.Int64, "batch", "seq")] Expr inputIds,
        [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var x = Apply("embeddings", new GradEmbeddings { Hidden = Hidden }, noise, inputIds, tokenTypes);
        x = Apply("encoder.layer.0", new GradEncoderLayer { Hidden = Hidden, Heads = 2 }, x, LengthMask(validLength, inputIds));
        var weights = Softmax(Reshape(LengthMask(validLength, x), Batch, 1, Seq));
        var mean = Reshape(MatMul(weights, x), Batch, Hidden);
        var pooled = Tanh(Linear(mean, Hidden, Hidden, "pooler.dense"));
        return Linear(Dropout(pooled, 0.1), Hidden, 3, "classifier");
    }
}

/// <summary>A tiny float32 BERT pair classifier for the trainer tests: embeddings over a 16-token vocabulary, one
/// encoder layer, pooler, two classes; inputs as the data pipeline's batches (token ids, segment ids, valid length).</summary>
[Model("train_tiny")]
[StaticShapes(Batch = 4, SeqLens = new[] { 8, 16 })]
public partial class TinyClassifierModel
{
    [Hyper] public int Hidden = 16;

    [Forward]
    public Expr Forward(
        [Input(DType.Int64, "batch", "seq")] Expr inputIds,
        [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var words = Embedding(inputIds, 16, Hidden, "embeddings.word_embeddings");
        var positions = PositionEmbedding(inputIds, 16, Hidden, "embeddings.position_embeddings");
        var types = Embedding(tokenTypes, 2, Hidden, "embeddings.token_type_embeddings");
        var x = Dropout(LayerNorm(words + positions + types, Hidden, 1e-12, "embeddings.LayerNorm"), 0.1);
        var mask = LengthMask(validLength, inputIds);
        x = Apply("encoder.layer.0", new GradEncoderLayer { Hidden = Hidden, Heads = 2 }, x, mask);
        var pooled = Tanh(Linear(Select(x, 1, 0), Hidden, Hidden, "pooler.dense"));
        return Linear(Dropout(pooled, 0.1), Hidden, 2, "classifier");
    }
}

/// <summary><see cref="TinyClassifierModel"/> without dropout, so gradients do not depend on the RNG (accumulation test).</summary>
[Model("train_tiny_nodrop")]
[StaticShapes(Batch = 4, SeqLens = new[] { 8, 16 })]
public partial class TinyClassifierNoDropoutModel
{
    [Hyper] public int Hidden = 16;

    [Forward]
    public Expr Forward(
        [Input(DType.Int64, "batch", "seq")] Expr inputIds,
        [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var words = Embedding(inputIds, 16, Hidden, "embeddings.word_embeddings");
        var positions = PositionEmbedding(inputIds, 16, Hidden, "embeddings.position_embeddings");
        var types = Embedding(tokenTypes, 2, Hidden, "embeddings.token_type_embeddings");
        var x = LayerNorm(words + positions + types, Hidden, 1e-12, "embeddings.LayerNorm");
        var mask = LengthMask(validLength, inputIds);
        x = Apply("encoder.layer.0", new GradEncoderLayer { Hidden = Hidden, Heads = 2, DropoutP = 0.0 }, x, mask);
        var pooled = Tanh(Linear(Select(x, 1, 0), Hidden, Hidden, "pooler.dense"));
        return Linear(pooled, Hidden, 2, "classifier");
    }
}
