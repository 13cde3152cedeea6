namespace GraphCompiler.Registry
{
    /// <summary>The names of a Forward body's functions (the members of GraphCompiler.Ops), as the parser reports them.</summary>
    public static class DslNames
    {
        public const string Add = "Add";

        public const string Apply = "Apply";

        public const string Attention = "Attention";

        public const string Concat = "Concat";

        public const string Dropout = "Dropout";

        public const string Embedding = "Embedding";

        public const string Gelu = "Gelu";

        public const string LayerNorm = "LayerNorm";

        public const string LengthMask = "LengthMask";

        public const string Linear = "Linear";

        public const string MatMul = "MatMul";

        public const string Mul = "Mul";

        public const string Param = "Param";

        public const string Permute = "Permute";

        public const string PositionEmbedding = "PositionEmbedding";

        public const string Repeat = "Repeat";

        public const string Reshape = "Reshape";

        public const string RmsNorm = "RmsNorm";

        public const string Scale = "Scale";

        public const string Select = "Select";

        public const string Silu = "Silu";

        public const string Slice = "Slice";

        public const string Softmax = "Softmax";

        public const string Tanh = "Tanh";

        public const string Transpose = "Transpose";
    }
}
