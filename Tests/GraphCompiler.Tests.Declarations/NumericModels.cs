using GraphCompiler;
using static GraphCompiler.Ops;

namespace GraphCompiler.Tests.Declarations;

// Small models for the numerical tests (Tests/GraphCompiler.Tests/Runtime/NumericalTests.cs). Each one returns a
// Concat of several op results where the shapes allow it, so a test can compare every part on its own.

/// <summary>Element-wise ops and their operator forms, plus broadcasting against parameters.
/// Output [batch, seq, 8 × 14]; part order is listed in NumericalTests.</summary>
[Model("num_elementwise")]
[StaticShapes(Batch = 2, SeqLens = new[] { 3, 5 })]
public partial class ElementwiseModel
{
    [Forward]
    public Expr Forward(
        [Input(DType.Float32, "batch", "seq", "8")] Expr x,
        [Input(DType.Float32, "batch", "seq", "8")] Expr y)
    {
        var bias = Param("bias", Init.Normal, 8);
        var gain = Param("gain", Init.Normal, 8);
        return Concat(-1,
            Add(x, y),
            x + y,
            Mul(x, y),
            x * y,
            Scale(x, 1.5),
            x * 0.5,
            0.25 * x,
            x - y,
            Add(x, bias),
            Mul(x, gain),
            Tanh(x),
            Gelu(x),
            Softmax(x),
            Dropout(x, 0.25));
    }
}

/// <summary>Views: Reshape (with Batch/Seq and -1), Transpose (positive and negative dims), Permute, Select, Slice,
/// broadcasting a selected row back over seq. Output [batch, seq, 12 + 12 + 4 + 5 + 12].</summary>
[Model("num_shapes")]
[StaticShapes(Batch = 2, SeqLens = new[] { 4, 6 })]
public partial class ShapeModel
{
    [Forward]
    public Expr Forward([Input(DType.Float32, "batch", "seq", "12")] Expr x)
    {
        var split = Reshape(x, Batch, Seq, 3, 4);
        var transposed = Transpose(split, 1, 2);
        var permuted = Permute(transposed, 0, 2, 3, 1);
        var swapped = Transpose(split, -1, -2);
        return Concat(-1,
            Reshape(permuted, Batch, Seq, 12),
            Reshape(swapped, Batch, Seq, -1),
            Select(split, 2, 1),
            Slice(x, 2, 2, 7),
            x + Reshape(Select(x, 1, 0), Batch, 1, 12));
    }
}

/// <summary>MatMul, Softmax with an additive mask input (a secondary input), plain Softmax. Output [batch, seq, 16].</summary>
[Model("num_matmul_softmax")]
[StaticShapes(Batch = 2, SeqLens = new[] { 4, 7 })]
public partial class MatMulSoftmaxModel
{
    [Forward]
    public Expr Forward(
        [Input(DType.Float32, "batch", "seq", "8")] Expr x,
        [Input(DType.Float32, "batch", "seq", "8")] Expr y,
        [Input(DType.Float32, "batch", "1", "seq")] Expr mask)
    {
        var scores = MatMul(x, Transpose(y, 1, 2));
        var probs = Softmax(scores, mask);
        return Concat(-1, MatMul(probs, y), MatMul(Softmax(scores), y));
    }
}

/// <summary>Linear with and without bias, sibling linears packed into one GEMM (unequal sizes), bias folded into the
/// GEMM, linear+GELU fused, GELU after a bias-less linear. Output [batch, seq, 6+4+5+12+3+4].</summary>
[Model("num_linear")]
[StaticShapes(Batch = 2, SeqLens = new[] { 3, 5 })]
public partial class LinearModel
{
    [Forward]
    public Expr Forward([Input(DType.Float32, "batch", "seq", "8")] Expr x)
    {
        var left = Linear(x, 8, 6, "proj.left");
        var right = Linear(x, 8, 4, "proj.right");
        var plain = Linear(Tanh(x), 8, 5, "plain");
        var up = Gelu(Linear(Scale(x, 0.5), 8, 12, "up"));
        var noBias = Linear(Gelu(x), 8, 3, "no_bias", bias: false);
        var upNoBias = Gelu(Linear(Softmax(x), 8, 4, "up_no_bias", bias: false));
        return Concat(-1, left, right, plain, up, noBias, upNoBias);
    }
}

/// <summary>LayerNorm alone and residual + LayerNorm (fused add_layer_norm). Output [batch, seq, 16].</summary>
[Model("num_layer_norm")]
[StaticShapes(Batch = 2, SeqLens = new[] { 3, 5 })]
public partial class LayerNormModel
{
    [Forward]
    public Expr Forward(
        [Input(DType.Float32, "batch", "seq", "8")] Expr x,
        [Input(DType.Float32, "batch", "seq", "8")] Expr y)
    {
        var plain = LayerNorm(x, 8, 1e-5, "plain_norm");
        var residual = LayerNorm(x + y, 8, 1e-12, "residual_norm");
        return Concat(-1, plain, residual);
    }
}

/// <summary>Embedding, PositionEmbedding, LengthMask. Output [batch, seq, 16]: the summed embeddings, then
/// softmax(x·xᵀ + mask)·x.</summary>
[Model("num_embedding")]
[StaticShapes(Batch = 3, SeqLens = new[] { 5, 9 })]
public partial class EmbeddingModel
{
    [Hyper] public int Vocab = 20;

    [Forward]
    public Expr Forward(
        [Input(DType.Int64, "batch", "seq")] Expr ids,
        [Input(DType.Int64, "batch", "seq")] Expr types,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var words = Embedding(ids, Vocab, 8, "words");
        var kinds = Embedding(types, 2, 8, "kinds");
        var positions = PositionEmbedding(ids, 12, 8, "positions");
        var x = words + kinds + positions;
        var mask = LengthMask(validLength, ids);
        var grid = Reshape(x, Batch, 1, Seq, 8);
        var probs = Softmax(MatMul(grid, Transpose(grid, -1, -2)), mask);
        return Concat(-1, x, Reshape(MatMul(probs, grid), Batch, Seq, 8));
    }
}

/// <summary>Multi-head attention with separate q/k/v projections (packed into one GEMM) and attention dropout (SDPA).
/// Output [batch, seq, 16].</summary>
[Model("num_attention")]
[StaticShapes(Batch = 2, SeqLens = new[] { 4, 6 })]
public partial class AttentionModel
{
    [Forward]
    public Expr Forward(
        [Input(DType.Float32, "batch", "seq", "16")] Expr x,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var q = Linear(x, 16, 16, "self.query");
        var k = Linear(x, 16, 16, "self.key");
        var v = Linear(x, 16, 16, "self.value");
        return Attention(q, k, v, LengthMask(validLength, x), 4, 0.2);
    }
}

/// <summary>A post-LN encoder layer (BERT's shape and names).</summary>
[Block]
public partial class NumEncoderLayer
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

/// <summary>First-token pooler: tanh(Linear(x[:, 0])).</summary>
[Block]
public partial class NumPooler
{
    [Hyper] public int Hidden;

    [Forward]
    public Expr Forward(Expr x) => Tanh(Linear(Select(x, 1, 0), Hidden, Hidden, "dense"));
}

/// <summary>A single encoder layer applied with Apply, then the same block repeated twice with Repeat, then a pooler
/// (Apply). Output [batch, seq, 2·hidden]: the final sequence, then the sequence plus the pooled vector.</summary>
[Model("num_encoder")]
[StaticShapes(Batch = 2, SeqLens = new[] { 5, 8 })]
public partial class EncoderModel
{
    [Hyper] public int Hidden = 16;

    [Forward]
    public Expr Forward(
        [Input(DType.Float32, "batch", "seq", "Hidden")] Expr x,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var mask = LengthMask(validLength, x);
        var first = Apply("first", new NumEncoderLayer { Hidden = Hidden, Heads = 2, Ffn = 2 * Hidden }, x, mask);
        var encoded = Repeat(2, "layer", new NumEncoderLayer { Hidden = Hidden, Heads = 4, Ffn = 3 * Hidden, DropoutP = 0.2 }, first, mask);
        var pooled = Apply("pooler", new NumPooler { Hidden = Hidden }, encoded);
        return Concat(-1, encoded, encoded + Reshape(pooled, Batch, 1, Hidden));
    }
}

/// <summary>Just dropout, large enough to check its statistics. Output [batch, seq, 64].</summary>
[Model("num_dropout")]
[StaticShapes(Batch = 4, SeqLens = new[] { 32, 64 })]
public partial class DropoutModel
{
    [Forward]
    public Expr Forward([Input(DType.Float32, "batch", "seq", "64")] Expr x) => Dropout(Scale(x, 1.0), 0.3);
}

/// <summary>Float64 end to end: LengthMask must follow the input's dtype (double's lowest value), and every op keep
/// float64. Output [batch, seq, 8].</summary>
[Model("num_float64")]
[StaticShapes(Batch = 2, SeqLens = new[] { 3, 6 })]
public partial class Float64Model
{
    [Forward]
    public Expr Forward(
        [Input(DType.Float64, "batch", "seq", "8")] Expr x,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var grid = Reshape(x, Batch, 1, Seq, 8);
        var probs = Softmax(Scale(MatMul(grid, Transpose(grid, -1, -2)), 0.5), LengthMask(validLength, x));
        return Reshape(MatMul(probs, Tanh(grid)), Batch, Seq, 8);
    }
}
