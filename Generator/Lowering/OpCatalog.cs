namespace GraphCompiler.Generator
{
    /// <summary>The ops a Forward may call (the members of GraphCompiler.Ops), for diagnostics.</summary>
    public static class OpCatalog
    {
        public static readonly string[] Names =
        {
            "Add", "Apply", "Attention", "Concat", "Dropout", "Embedding", "Gelu", "LayerNorm", "LengthMask", "Linear",
            "MatMul", "Mul", "Param", "Permute", "PositionEmbedding", "Repeat", "Reshape", "Scale", "Select", "Slice",
            "Softmax", "Tanh", "Transpose",
        };
    }
}
