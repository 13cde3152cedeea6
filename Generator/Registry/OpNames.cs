namespace GraphCompiler.Registry
{
    /// <summary>The IR's op names, the only place they are spelled; <see cref="OpRegistry"/> defines each. Primitive ops
    /// come from lowering; fused ops are introduced by passes.</summary>
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

        /// <summary>rms_norm(x, weight) {eps}: x / √(mean(x², last axis) + eps) · weight (LLaMA's pre-norm).</summary>
        public const string RmsNorm = "rms_norm";

        /// <summary>silu(x) = x·σ(x) (SwiGLU's gate activation).</summary>
        public const string Silu = "silu";

        // Fused ops (passes).
        public const string Linear = "linear";
        public const string LinearGelu = "linear_gelu";
        public const string AddLayerNorm = "add_layer_norm";
        public const string Sdpa = "sdpa";

        // Quantization (the calibration and int8 variants of a [Quantize] model).
        /// <summary>observe(x) {slot, kind}: x unchanged; the calibration forward hands x to its activation observer.</summary>
        public const string Observe = "observe";

        /// <summary>qlinear(x, weight, weight_scale, input_scale[, bias]): x f32 [..., K] quantized per tensor with
        /// input_scale f32 [] (or x i8, already quantized with it by a requantizing producer), times weight i8 [N, K]
        /// dequantized per channel with weight_scale f32 [N], plus bias f32 [N] → f32.</summary>
        public const string QLinear = "qlinear";

        /// <summary>gelu(qlinear(...)), same inputs as <see cref="QLinear"/>.</summary>
        public const string QLinearGelu = "qlinear_gelu";

        /// <summary>qlinear_requantize(x, weight, weight_scale, input_scale[, bias], output_scale): qlinear whose result
        /// is quantized for the GEMM it feeds with that GEMM's input scale → i8 (placed by requantize_gemm_outputs).</summary>
        public const string QLinearRequantize = "qlinear_requantize";

        /// <summary>qlinear_gelu with the result quantized as <see cref="QLinearRequantize"/> → i8.</summary>
        public const string QLinearGeluRequantize = "qlinear_gelu_requantize";

        /// <summary>qembedding(ids, table, table_scale): rows of table i8 [V, H] gathered by ids i64 [...] and
        /// dequantized with their per-row scales table_scale f32 [V] → f32 [..., H].</summary>
        public const string QEmbedding = "qembedding";

        /// <summary>The int8 GEMM ops: inputs (x, weight, weight_scale, input_scale, ...) in that order.</summary>
        public static bool IsQuantizedGemm(string op) => op is QLinear or QLinearGelu or QLinearRequantize or QLinearGeluRequantize;

        /// <summary>The int8 GEMMs that apply GELU after the bias.</summary>
        public static bool HasGelu(string op) => op is QLinearGelu or QLinearGeluRequantize;

        /// <summary>The int8 GEMMs whose output is requantized to i8 (their last input is output_scale).</summary>
        public static bool Requantizes(string op) => op is QLinearRequantize or QLinearGeluRequantize;

        // Training: an explicit dropout mask (so forward and backward share it).
        public const string DropoutMask = "dropout_mask";

        // Backward graphs (autodiff): where values come from, and the gradient ops.
        public const string Saved = "saved";
        public const string GradOutput = "grad_output";
        public const string SumTo = "sum_to";
        public const string LinearDw = "linear_dw";
        public const string GeluGrad = "gelu_grad";
        public const string TanhGrad = "tanh_grad";
        public const string SoftmaxGrad = "softmax_grad";
        /// <summary>scale·softmax_grad(dy ∘ gate, y): attention's backward through dropout and the score scale in one pass
        /// (inputs dy, y, gate; attribute scale).</summary>
        public const string GatedSoftmaxGrad = "gated_softmax_grad";
        public const string LayerNormDx = "layer_norm_dx";
        public const string LayerNormDw = "layer_norm_dw";
        public const string RmsNormDx = "rms_norm_dx";
        public const string RmsNormDw = "rms_norm_dw";
        public const string SiluGrad = "silu_grad";
        public const string SelectGrad = "select_grad";
        public const string SliceGrad = "slice_grad";
        public const string EmbeddingGrad = "embedding_grad";
        public const string RowsGrad = "rows_grad";
        public const string SdpaGrad = "sdpa_grad";
    }
}
