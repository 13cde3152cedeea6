using System;

namespace GraphCompiler
{
    /// <summary>The op vocabulary of a Forward body (<c>using static GraphCompiler.Ops;</c>). Each op's shape rule is
    /// in its summary; the generator checks it at compile time. Calling these at run time is an error: declarations
    /// are compiled, not executed.</summary>
    public static class Ops
    {
        /// <summary>The batch dimension of the current static shape bucket (for <see cref="Reshape"/>).</summary>
        public const int Batch = -1001;

        /// <summary>The sequence dimension of the current static shape bucket (for <see cref="Reshape"/>).</summary>
        public const int Seq = -1002;

        internal static InvalidOperationException NotExecutable() =>
            new InvalidOperationException(
                "GraphCompiler DSL ops describe a graph for the source generator and cannot run. " +
                "Use the generated '<Model>Module' class instead.");

        /// <summary>A learned parameter named <paramref name="name"/> of shape <paramref name="dims"/>.</summary>
        public static Expr Param(string name, Init init, params int[] dims) => throw NotExecutable();

        /// <summary>Gather rows: ids i64[...] → f32[..., dim]; creates <c>{name}.weight</c> [vocab, dim].</summary>
        public static Expr Embedding(Expr ids, int vocab, int dim, string name) => throw NotExecutable();

        /// <summary>Learned positions: the first seq rows of <c>{name}.weight</c> [maxPositions, dim] → [seq, dim], where seq
        /// is dimension 1 of <paramref name="like"/> ([batch, seq, ...]); every seq bucket must be ≤ maxPositions.</summary>
        public static Expr PositionEmbedding(Expr like, int maxPositions, int dim, string name) => throw NotExecutable();

        /// <summary>x[..., inFeatures] → [..., outFeatures]; creates <c>{name}.weight</c> [out, in] and
        /// <c>{name}.bias</c> [out].</summary>
        public static Expr Linear(Expr x, int inFeatures, int outFeatures, string name, bool bias = true) => throw NotExecutable();

        /// <summary>Batched matrix product: [..., m, k] × [..., k, n] → [..., m, n] (leading dims equal).</summary>
        public static Expr MatMul(Expr a, Expr b) => throw NotExecutable();

        /// <summary>Element-wise sum with broadcasting (trailing-aligned, a dim of 1 broadcasts).</summary>
        public static Expr Add(Expr a, Expr b) => throw NotExecutable();

        /// <summary>Element-wise product with broadcasting.</summary>
        public static Expr Mul(Expr a, Expr b) => throw NotExecutable();

        /// <summary>Multiply by a compile-time constant.</summary>
        public static Expr Scale(Expr x, double factor) => throw NotExecutable();

        /// <summary>New view with the same element count; dims may use <see cref="Batch"/>, <see cref="Seq"/> and one -1.</summary>
        public static Expr Reshape(Expr x, params int[] dims) => throw NotExecutable();

        /// <summary>Swap two dimensions (negative indices count from the end).</summary>
        public static Expr Transpose(Expr x, int dim0, int dim1) => throw NotExecutable();

        /// <summary>Reorder all dimensions.</summary>
        public static Expr Permute(Expr x, params int[] order) => throw NotExecutable();

        /// <summary>Softmax over the last dimension.</summary>
        public static Expr Softmax(Expr x) => throw NotExecutable();

        /// <summary>Softmax over the last dimension of <c>x + mask</c> (mask broadcasts to x).</summary>
        public static Expr Softmax(Expr x, Expr mask) => throw NotExecutable();

        /// <summary>Normalise the last dimension (size <paramref name="dim"/>); creates <c>{name}.weight</c>, <c>{name}.bias</c>.</summary>
        public static Expr LayerNorm(Expr x, int dim, double eps, string name) => throw NotExecutable();

        /// <summary>RMSNorm of the last dimension (size <paramref name="dim"/>): x / √(mean(x²) + eps) · weight; creates
        /// <c>{name}.weight</c> (ones), no bias (LLaMA's pre-norm).</summary>
        public static Expr RmsNorm(Expr x, int dim, double eps, string name) => throw NotExecutable();

        /// <summary>SiLU (swish), x·σ(x); with <see cref="Mul"/> and <see cref="Linear"/> it makes SwiGLU:
        /// down(Silu(gate(x)) * up(x)).</summary>
        public static Expr Silu(Expr x) => throw NotExecutable();

        /// <summary>GELU, exact erf form (as BERT).</summary>
        public static Expr Gelu(Expr x) => throw NotExecutable();

        /// <summary>Hyperbolic tangent.</summary>
        public static Expr Tanh(Expr x) => throw NotExecutable();

        /// <summary>Inverted dropout with probability <paramref name="p"/> in training; identity in eval.</summary>
        public static Expr Dropout(Expr x, double p) => throw NotExecutable();

        /// <summary>Pick one index of a dimension, removing it (e.g. the first token: Select(x, 1, 0)).</summary>
        public static Expr Select(Expr x, int dim, int index) => throw NotExecutable();

        /// <summary>Keep [start, end) of a dimension.</summary>
        public static Expr Slice(Expr x, int dim, int start, int end) => throw NotExecutable();

        /// <summary>Join tensors along a dimension; other dims equal.</summary>
        public static Expr Concat(int dim, params Expr[] parts) => throw NotExecutable();

        /// <summary>Additive attention mask [batch, 1, 1, seq] from valid lengths i64[batch]: 0 where the position is
        /// below the length, the dtype's lowest value elsewhere. <paramref name="like"/> supplies seq: [batch, seq, ...].</summary>
        public static Expr LengthMask(Expr validLength, Expr like) => throw NotExecutable();

        /// <summary>Multi-head scaled dot-product attention. q, k, v: [batch, seq, hidden]; mask: additive,
        /// broadcastable to [batch, heads, seq, seq]; hidden % heads == 0. Result [batch, seq, hidden].</summary>
        public static Expr Attention(Expr q, Expr k, Expr v, Expr mask, int heads, double dropout) => throw NotExecutable();

        /// <summary>Inline a block under the parameter prefix <paramref name="prefix"/> ("" for none).</summary>
        public static Expr Apply<TBlock>(string prefix, TBlock block, params Expr[] inputs) where TBlock : class => throw NotExecutable();

        /// <summary>Apply a block <paramref name="count"/> times, threading <paramref name="x"/> through; copy i gets the
        /// prefix <c>{prefix}.{i}</c>; <paramref name="shared"/> are passed to every copy unchanged.</summary>
        public static Expr Repeat<TBlock>(int count, string prefix, TBlock block, Expr x, params Expr[] shared) where TBlock : class => throw NotExecutable();
    }
}
