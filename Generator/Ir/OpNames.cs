namespace GraphCompiler.Generator.Ir
{
    /// <summary>The IR's op names. Primitive ops come from lowering; fused ops are introduced by passes.</summary>
    public static class OpNames
    {
        public const string Input = "input";
        public const string Param = "param";
        public const string Embedding = "embedding";
        public const string Rows = "rows";
        public const string MatMul = "matmul";
        public const string Add = "add";
        public const string Sub = "sub";
        public const string Mul = "mul";
        public const string Scale = "scale";
        public const string Reshape = "reshape";
        public const string Transpose = "transpose";
        public const string Permute = "permute";
        public const string Softmax = "softmax";
        public const string MaskedSoftmax = "masked_softmax";
        public const string LayerNorm = "layer_norm";
        public const string Gelu = "gelu";
        public const string Tanh = "tanh";
        public const string Dropout = "dropout";
        public const string Select = "select";
        public const string Slice = "slice";
        public const string Concat = "concat";
        public const string LengthMask = "length_mask";

        // Fused ops (passes).
        public const string Linear = "linear";
        public const string LinearGelu = "linear_gelu";
        public const string AddLayerNorm = "add_layer_norm";
        public const string Sdpa = "sdpa";
    }
}
