using System;
using System.Collections.Generic;
using System.Linq;
using static GraphCompiler.Registry.KernelArg;

namespace GraphCompiler.Registry
{
    /// <summary>Every IR op, defined once (TVM's RELAY_REGISTER_OP, PyTorch's native_functions.yaml): attributes, arity,
    /// decomposition, gradient, kernel call, ONNX mapping. The lowerer, ShapeRules, Autodiff, the emitter, the symbol
    /// interpreter and the ONNX exporter read it; RegistryTests fail when an op lacks a binding its kind requires.</summary>
    public static class OpRegistry
    {
        private static readonly AttrSpec[] None = Array.Empty<AttrSpec>();

        private const string NotDifferentiableBackward = "a gradient op: second derivatives are not supported";
        private const string NotExportedBackward = "backward graphs are never exported";

        public static IReadOnlyList<OpDef> All { get; } = Build();

        private static readonly Dictionary<string, OpDef> ByName = All.ToDictionary(o => o.Name, StringComparer.Ordinal);

        public static bool TryGet(string name, out OpDef op) => ByName.TryGetValue(name, out op!);

        public static OpDef Get(string name) =>
            ByName.TryGetValue(name, out var op) ? op : throw new KeyNotFoundException($"'{name}' is not a registered op");

        /// <summary>The functions a Forward body may call (the members of GraphCompiler.Ops) and what each lowers to.</summary>
        public static IReadOnlyList<DslFunction> Dsl { get; } = new[]
        {
            new DslFunction(DslNames.Add, OpNames.Add),
            new DslFunction(DslNames.Apply, "the block's Forward, inlined under a parameter prefix"),
            new DslFunction(DslNames.Attention, "reshape/permute per head, matmul(q, k, transB), scale(1/√d), masked_softmax, dropout, matmul(·, v), permute/reshape back (fuse_attention makes it sdpa)"),
            new DslFunction(DslNames.Concat, OpNames.Concat),
            new DslFunction(DslNames.Dropout, OpNames.Dropout + " (nothing when p = 0)"),
            new DslFunction(DslNames.Embedding, OpNames.Embedding + " over a new {name}.weight"),
            new DslFunction(DslNames.Gelu, OpNames.Gelu),
            new DslFunction(DslNames.LayerNorm, OpNames.LayerNorm + " with new {name}.weight (ones) and {name}.bias (zeros)"),
            new DslFunction(DslNames.LengthMask, OpNames.LengthMask),
            new DslFunction(DslNames.Linear, "matmul(x, {name}.weight, transB) + {name}.bias (fold_bias_into_gemm makes it linear)"),
            new DslFunction(DslNames.MatMul, OpNames.MatMul),
            new DslFunction(DslNames.Mul, OpNames.Mul),
            new DslFunction(DslNames.Param, OpNames.Param),
            new DslFunction(DslNames.Permute, OpNames.Permute),
            new DslFunction(DslNames.PositionEmbedding, OpNames.Rows + " of a new {name}.weight, as many as the bucket's seq"),
            new DslFunction(DslNames.Repeat, "the block inlined count times under {prefix}.{i}"),
            new DslFunction(DslNames.Reshape, OpNames.Reshape),
            new DslFunction(DslNames.RmsNorm, OpNames.RmsNorm + " with a new {name}.weight (ones)"),
            new DslFunction(DslNames.Scale, OpNames.Scale),
            new DslFunction(DslNames.Select, OpNames.Select),
            new DslFunction(DslNames.Silu, OpNames.Silu),
            new DslFunction(DslNames.Slice, OpNames.Slice),
            new DslFunction(DslNames.Softmax, OpNames.Softmax + ", or " + OpNames.MaskedSoftmax + " with a mask"),
            new DslFunction(DslNames.Tanh, OpNames.Tanh),
            new DslFunction(DslNames.Transpose, OpNames.Transpose),
        };

        private static OpDef[] Build() => new[]
        {
            // ---- bound, not computed ----
            Source(OpNames.Input, "a model input, bound by name", new AttrSpec("name", AttrType.Text)),
            Source(OpNames.Param, "a parameter, bound by checkpoint name", new AttrSpec("name", AttrType.Text), new AttrSpec("init", AttrType.Text, optional: true)),
            Source(OpNames.Saved, "a forward value a backward graph reads", new AttrSpec("ref", AttrType.Int)),
            Source(OpNames.GradOutput, "the gradient of a forward output", new AttrSpec("index", AttrType.Int)),

            // ---- primitives (lowering) ----
            new OpDef(OpNames.Embedding, OpKind.Primitive, "(ids i64[...], table [V, H]) → [..., H]")
            {
                MinInputs = 2, MaxInputs = 2,
                Gradient = GradientSpec.Custom("the table's row count becomes embedding_grad's attribute"),
                Kernel = KernelCall.Static("Kernels.Embedding", In(0), In(1)),
                Onnx = OnnxMapping.Exporter("Gather(table, ids)"),
            },
            new OpDef(OpNames.Rows, OpKind.Primitive, "(table [N, H]) {count} → the first count rows")
            {
                MinInputs = 1, MaxInputs = 1, Attrs = new[] { new AttrSpec("count", AttrType.Dims) },
                Gradient = GradientSpec.Custom("the table's row count becomes rows_grad's attribute"),
                Kernel = KernelCall.Static("Kernels.Rows", In(0), Dims("count", 1)),
                Onnx = OnnxMapping.Exporter("Slice of the first count rows (a bucket symbol read from the inputs' shapes)"),
            },
            new OpDef(OpNames.MatMul, OpKind.Primitive, "(a [..., m, k], b [..., k, n] or [..., n, k] when transB) → [..., m, n]")
            {
                MinInputs = 2, MaxInputs = 2, Attrs = new[] { new AttrSpec("transB", AttrType.Bool) },
                Gradient = GradientSpec.Custom("a shared 2-D weight sums over leading dimensions; transposes depend on ranks"),
                Kernel = KernelCall.Static("Kernels.MatMul", In(0), In(1), Bool("transB", "transB: ")),
                Onnx = OnnxMapping.Exporter("MatMul, b's last two axes transposed when transB"),
            },
            Binary(OpNames.Add, "torch.add", "Add", GradTerm.Pass(0), GradTerm.Pass(1)),
            Binary(OpNames.Sub, "torch.sub", "Sub", GradTerm.Pass(0), GradTerm.Of(1, OpNames.Scale, GradArg.G).With("factor", "-1").Summed()),
            Binary(OpNames.Mul, "torch.mul", "Mul", GradTerm.Of(0, OpNames.Mul, GradArg.G, GradArg.Saved(1)).Summed(), GradTerm.Of(1, OpNames.Mul, GradArg.G, GradArg.Saved(0)).Summed()),
            new OpDef(OpNames.Scale, OpKind.Primitive, "(x) {factor} → x·factor")
            {
                MinInputs = 1, MaxInputs = 1, Attrs = new[] { new AttrSpec("factor", AttrType.Float) },
                Gradient = GradientSpec.Rules(GradTerm.Of(0, OpNames.Scale, GradArg.G).WithAttrs()),
                Kernel = KernelCall.Static("torch.mul", In(0), Float("factor")),
                Onnx = OnnxMapping.Build("Mul by a scalar", b => b.Emit("Mul", new[] { b.Input(0), b.Scalar(b.Float("factor")) })),
            },
            new OpDef(OpNames.Reshape, OpKind.Primitive, "(x) {shape} → x viewed as shape")
            {
                MinInputs = 1, MaxInputs = 1, Attrs = new[] { new AttrSpec("shape", AttrType.Dims) },
                Gradient = GradientSpec.Custom("reshapes back to the input's shape"),
                Kernel = KernelCall.Method("reshape", Dims("shape")),
                Onnx = OnnxMapping.Exporter("Reshape (bucket symbols read from the inputs' shapes)"),
            },
            new OpDef(OpNames.Transpose, OpKind.Primitive, "(x) {dim0, dim1} → x with two axes swapped")
            {
                MinInputs = 1, MaxInputs = 1, Attrs = new[] { new AttrSpec("dim0", AttrType.Int), new AttrSpec("dim1", AttrType.Int) },
                Gradient = GradientSpec.Rules(GradTerm.Of(0, OpNames.Transpose, GradArg.G).WithAttrs()),
                Kernel = KernelCall.Method("transpose", Int("dim0"), Int("dim1")),
                Onnx = OnnxMapping.Exporter("Transpose with the swap as perm (needs the input's rank)"),
            },
            new OpDef(OpNames.Permute, OpKind.Primitive, "(x) {order} → x with axes reordered")
            {
                MinInputs = 1, MaxInputs = 1, Attrs = new[] { new AttrSpec("order", AttrType.Ints) },
                Gradient = GradientSpec.Custom("permutes by the inverse order"),
                Kernel = KernelCall.Method("permute", Ints("order")),
                Onnx = OnnxMapping.Exporter("Transpose (negative axes resolved with the input's rank)"),
            },
            new OpDef(OpNames.Softmax, OpKind.Primitive, "(x) → softmax over the last axis")
            {
                MinInputs = 1, MaxInputs = 1,
                Gradient = GradientSpec.Rules(GradTerm.Of(0, OpNames.SoftmaxGrad, GradArg.G, GradArg.Output)),
                Kernel = KernelCall.Static("torch.softmax", In(0), Const(-1)),
                Onnx = OnnxMapping.Build("Softmax(axis=-1)", b => Softmax(b, b.Input(0))),
            },
            new OpDef(OpNames.MaskedSoftmax, OpKind.Primitive, "(x, mask) → softmax(x + mask) over the last axis")
            {
                MinInputs = 2, MaxInputs = 2, Decomposition = "softmax(add(x, mask))",
                Gradient = GradientSpec.Rules(GradTerm.Of(0, OpNames.SoftmaxGrad, GradArg.G, GradArg.Output)),
                Kernel = KernelCall.Static("Kernels.MaskedSoftmax", In(0), In(1)),
                Onnx = OnnxMapping.Build("Softmax(Add(x, mask))", b => Softmax(b, b.Emit("Add", new[] { b.Input(0), b.Input(1) }))),
            },
            new OpDef(OpNames.LayerNorm, OpKind.Primitive, "(x [..., H], weight [H], bias [H]) {eps} → normalized over the last axis")
            {
                MinInputs = 3, MaxInputs = 3, Attrs = new[] { new AttrSpec("eps", AttrType.Float) },
                Gradient = GradientSpec.Rules(
                    GradTerm.Of(0, OpNames.LayerNormDx, GradArg.G, GradArg.Saved(0), GradArg.Saved(1)).WithAttrs(),
                    GradTerm.Of(1, OpNames.LayerNormDw, GradArg.G, GradArg.Saved(0)).WithAttrs(),
                    GradTerm.Pass(2)),
                Kernel = KernelCall.Static("Kernels.LayerNorm", In(0), In(1), In(2), Float("eps")),
                Onnx = OnnxMapping.Build("LayerNormalization(axis=-1)", b => LayerNorm(b, b.Input(0), 1)),
            },
            new OpDef(OpNames.RmsNorm, OpKind.Primitive, "(x [..., H], weight [H]) {eps} → x / √(mean(x²) + eps) · weight over the last axis")
            {
                MinInputs = 2, MaxInputs = 2, Attrs = new[] { new AttrSpec("eps", AttrType.Float) },
                // Saves x (not the rstd): recomputing one reduction is cheaper than keeping another tensor, as layer_norm.
                Gradient = GradientSpec.Rules(
                    GradTerm.Of(0, OpNames.RmsNormDx, GradArg.G, GradArg.Saved(0), GradArg.Saved(1)).WithAttrs(),
                    GradTerm.Of(1, OpNames.RmsNormDw, GradArg.G, GradArg.Saved(0)).WithAttrs()),
                Kernel = KernelCall.Static("Kernels.RmsNorm", In(0), In(1), Float("eps")),
                Onnx = OnnxMapping.Build("RMSNormalization from opset 23; below it Mul/ReduceMean/Add/Sqrt/Div/Mul", RmsNorm),
            },
            new OpDef(OpNames.Silu, OpKind.Primitive, "(x) → x·σ(x)")
            {
                MinInputs = 1, MaxInputs = 1,
                Gradient = GradientSpec.Rules(GradTerm.Of(0, OpNames.SiluGrad, GradArg.G, GradArg.Saved(0))),
                Kernel = KernelCall.Static("Kernels.Silu", In(0)),
                Onnx = OnnxMapping.Build("Mul(x, Sigmoid(x))", b => b.Emit("Mul", new[] { b.Input(0), b.Emit("Sigmoid", new[] { b.Input(0) }) })),
            },
            new OpDef(OpNames.Gelu, OpKind.Primitive, "(x) → GELU, exact erf form")
            {
                MinInputs = 1, MaxInputs = 1,
                Gradient = GradientSpec.Rules(GradTerm.Of(0, OpNames.GeluGrad, GradArg.G, GradArg.Saved(0))),
                Kernel = KernelCall.Static("Kernels.Gelu", In(0)),
                Onnx = OnnxMapping.Exporter("x·½·(1 + erf(x/√2)), the pattern ORT fuses (shared with linear_gelu and qlinear_gelu)"),
            },
            new OpDef(OpNames.Tanh, OpKind.Primitive, "(x) → tanh(x)")
            {
                MinInputs = 1, MaxInputs = 1,
                Gradient = GradientSpec.Rules(GradTerm.Of(0, OpNames.TanhGrad, GradArg.G, GradArg.Output)),
                Kernel = KernelCall.Static("torch.tanh", In(0)),
                Onnx = OnnxMapping.Direct("Tanh"),
            },
            new OpDef(OpNames.Dropout, OpKind.Primitive, "(x) {p} → inverted dropout in training, the identity in eval")
            {
                MinInputs = 1, MaxInputs = 1, Attrs = new[] { new AttrSpec("p", AttrType.Float) },
                Gradient = GradientSpec.None("training graphs replace it with mul by an explicit dropout_mask (explicit_dropout_masks)"),
                Kernel = KernelCall.Static("Kernels.Dropout", In(0), Float("p"), Training()),
                Onnx = OnnxMapping.Build("Identity (export is inference)", b => b.Emit("Identity", new[] { b.Input(0) })),
            },
            new OpDef(OpNames.Select, OpKind.Primitive, "(x) {dim, index} → x at one index of an axis, the axis removed")
            {
                MinInputs = 1, MaxInputs = 1, Attrs = new[] { new AttrSpec("dim", AttrType.Int), new AttrSpec("index", AttrType.Int) },
                Gradient = GradientSpec.Custom("select_grad needs the input axis' size"),
                Kernel = KernelCall.Method("select", Int("dim"), Int("index")),
                Onnx = OnnxMapping.Exporter("Gather of a scalar index"),
            },
            new OpDef(OpNames.Slice, OpKind.Primitive, "(x) {dim, start, end} → [start, end) of an axis")
            {
                MinInputs = 1, MaxInputs = 1, Attrs = new[] { new AttrSpec("dim", AttrType.Int), new AttrSpec("start", AttrType.Int), new AttrSpec("end", AttrType.Int) },
                Gradient = GradientSpec.Custom("slice_grad needs the input axis' size"),
                Kernel = KernelCall.Method("narrow", Int("dim"), Int("start"), Span("start", "end")),
                Onnx = OnnxMapping.Exporter("Slice"),
            },
            new OpDef(OpNames.Concat, OpKind.Primitive, "(parts...) {dim} → joined along an axis")
            {
                MinInputs = 1, MaxInputs = int.MaxValue, Attrs = new[] { new AttrSpec("dim", AttrType.Int) },
                Gradient = GradientSpec.Custom("each part's slice needs the parts' sizes"),
                Kernel = KernelCall.Static("torch.cat", All(), Int("dim")),
                Onnx = OnnxMapping.Exporter("Concat"),
            },
            new OpDef(OpNames.LengthMask, OpKind.Primitive, "(lengths i64[batch], like [batch, seq, ...]) {dtype} → additive mask [batch, 1, 1, seq]")
            {
                MinInputs = 1, MaxInputs = 2, Attrs = new[] { new AttrSpec("dtype", AttrType.Text) },
                Gradient = GradientSpec.None("a function of integer lengths only"),
                Kernel = KernelCall.Static("Kernels.LengthMask", In(0), ResultLastDim(), ResultDType()),
                Onnx = OnnxMapping.Exporter("Range/GreaterOrEqual/Where over the sequence length"),
            },

            // ---- fused (passes, inference graphs) ----
            new OpDef(OpNames.Linear, OpKind.Primitive, "(x [..., K], weight [N, K], bias [N]?) → [..., N]")
            {
                // fold_bias_into_gemm runs on training forwards too, so autodiff meets linear.
                MinInputs = 2, MaxInputs = 3, Decomposition = "add(matmul(x, weight, transB=true), bias)",
                Gradient = GradientSpec.Rules(
                    GradTerm.Of(0, OpNames.MatMul, GradArg.G, GradArg.Saved(1)).With("transB", "false"),
                    GradTerm.Of(1, OpNames.LinearDw, GradArg.G, GradArg.Saved(0)),
                    GradTerm.Pass(2)),
                Kernel = KernelCall.Static("Kernels.Linear", In(0), In(1), Optional(2, 3)),
                Onnx = OnnxMapping.Exporter("MatMul(x, Transpose(weight)) + bias"),
            },
            new OpDef(OpNames.LinearGelu, OpKind.Fused, "(x, weight, bias?) → gelu(linear)")
            {
                MinInputs = 2, MaxInputs = 3, Decomposition = "gelu(linear(x, weight, bias))",
                Gradient = GradientSpec.None("fused only in inference graphs"),
                Kernel = KernelCall.Static("Kernels.LinearGelu", In(0), In(1), Optional(2, 3)),
                Onnx = OnnxMapping.Exporter("linear, then GELU's erf formula"),
            },
            new OpDef(OpNames.AddLayerNorm, OpKind.Fused, "(a, b, weight, bias) {eps} → layer_norm(a + b)")
            {
                MinInputs = 4, MaxInputs = 4, Attrs = new[] { new AttrSpec("eps", AttrType.Float) }, Decomposition = "layer_norm(add(a, b), weight, bias)",
                Gradient = GradientSpec.None("fused only in inference graphs"),
                Kernel = KernelCall.Static("Kernels.AddLayerNorm", In(0), In(1), In(2), In(3), Float("eps")),
                Onnx = OnnxMapping.Build("Add, LayerNormalization", b => LayerNorm(b, b.Emit("Add", new[] { b.Input(0), b.Input(1) }), 2)),
            },
            new OpDef(OpNames.Sdpa, OpKind.Primitive, "(q, k, v [batch, heads, seq, d], mask) {dropout} → attention")
            {
                // fuse_attention runs on training forwards where attention has no dropout, so autodiff meets sdpa.
                MinInputs = 4, MaxInputs = 4, Attrs = new[] { new AttrSpec("dropout", AttrType.Float) },
                Decomposition = "matmul(dropout(masked_softmax(scale(matmul(q, k, transB=true), 1/√d), mask)), v)",
                Gradient = GradientSpec.Custom("one sdpa_grad computes dq, dk, dv stacked; each is a select of it"),
                Kernel = KernelCall.Static("Kernels.Attention", In(0), In(1), In(2), In(3), Float("dropout"), Training(offWhenZero: "dropout")),
                Onnx = OnnxMapping.Exporter("MatMul/Mul(1/√d)/Add(mask)/Softmax/MatMul"),
            },

            // ---- int8 ----
            new OpDef(OpNames.Observe, OpKind.Calibration, "(x) {slot, kind} → x, handed to the activation observer")
            {
                MinInputs = 1, MaxInputs = 1, Attrs = new[] { new AttrSpec("slot", AttrType.Text), new AttrSpec("kind", AttrType.Text) },
                Gradient = GradientSpec.None("calibration graphs run without gradients"),
                Kernel = KernelCall.Static("Kernels.Observe", In(0), Observer(), Text("slot"), Text("kind")),
                Onnx = OnnxMapping.None("calibration graphs are never exported"),
            },
            QLinear(OpNames.QLinear, gelu: false, requantize: false),
            QLinear(OpNames.QLinearGelu, gelu: true, requantize: false),
            QLinear(OpNames.QLinearRequantize, gelu: false, requantize: true),
            QLinear(OpNames.QLinearGeluRequantize, gelu: true, requantize: true),
            new OpDef(OpNames.QEmbedding, OpKind.Quantized, "(ids i64[...], table i8[V, H], table_scale [V]) → [..., H] dequantized")
            {
                MinInputs = 3, MaxInputs = 3,
                Gradient = GradientSpec.None("the int8 variant is inference only"),
                Kernel = KernelCall.Static("Kernels.QuantizedEmbedding", In(0), In(1), In(2)),
                Onnx = OnnxMapping.Exporter("Gather(i8 table) → Cast → Mul(Gather(row scales))"),
            },

            // ---- training forwards ----
            new OpDef(OpNames.DropoutMask, OpKind.Training, "(like) {p} → 0 with probability p, 1/(1−p) otherwise")
            {
                MinInputs = 1, MaxInputs = 1, Attrs = new[] { new AttrSpec("p", AttrType.Float) },
                Gradient = GradientSpec.None("a random mask; nothing flows into it"),
                Kernel = KernelCall.Static("Kernels.DropoutMask", In(0), Float("p")),
                Onnx = OnnxMapping.None("training graphs are never exported"),
            },

            // ---- backward graphs ----
            Grad(OpNames.SumTo, "(g) {shape} → g summed down to shape", 1, KernelCall.Static("Kernels.SumTo", In(0), Dims("shape")), new AttrSpec("shape", AttrType.Dims)),
            Grad(OpNames.LinearDw, "(dy [..., N], x [..., K]) → [N, K]", 2, KernelCall.Static("Kernels.LinearWeightGrad", In(0), In(1))),
            Grad(OpNames.GeluGrad, "(dy, x) → dy·gelu'(x)", 2, KernelCall.Static("Kernels.GeluGrad", In(0), In(1))),
            Grad(OpNames.TanhGrad, "(dy, y) → dy·(1 − y²)", 2, KernelCall.Static("Kernels.TanhGrad", In(0), In(1))),
            Grad(OpNames.SoftmaxGrad, "(dy, y) → y·(dy − Σ dy·y)", 2, KernelCall.Static("Kernels.SoftmaxGrad", In(0), In(1))),
            Grad(OpNames.GatedSoftmaxGrad, "(dy, y, gate) {scale} → scale·softmax_grad(dy ∘ gate, y)", 3,
                KernelCall.Static("Kernels.SoftmaxGrad", In(0), In(1), In(2), Float("scale")), new AttrSpec("scale", AttrType.Float)),
            Grad(OpNames.LayerNormDx, "(dy, x, weight) {eps} → ∂/∂x", 3, KernelCall.Static("Kernels.LayerNormInputGrad", In(0), In(1), In(2), Float("eps")), new AttrSpec("eps", AttrType.Float)),
            Grad(OpNames.LayerNormDw, "(dy, x) {eps} → ∂/∂weight", 2, KernelCall.Static("Kernels.LayerNormWeightGrad", In(0), In(1), Float("eps")), new AttrSpec("eps", AttrType.Float)),
            Grad(OpNames.RmsNormDx, "(dy, x, weight) {eps} → ∂/∂x", 3, KernelCall.Static("Kernels.RmsNormInputGrad", In(0), In(1), In(2), Float("eps")), new AttrSpec("eps", AttrType.Float)),
            Grad(OpNames.RmsNormDw, "(dy, x) {eps} → ∂/∂weight", 2, KernelCall.Static("Kernels.RmsNormWeightGrad", In(0), In(1), Float("eps")), new AttrSpec("eps", AttrType.Float)),
            Grad(OpNames.SiluGrad, "(dy, x) → dy·σ(x)·(1 + x·(1 − σ(x)))", 2, KernelCall.Static("Kernels.SiluGrad", In(0), In(1))),
            Grad(OpNames.SelectGrad, "(g) {dim, index, size} → zeros with g at index", 1,
                KernelCall.Static("Kernels.SelectGrad", In(0), Int("dim"), Int("index"), Dims("size")),
                new AttrSpec("dim", AttrType.Int), new AttrSpec("index", AttrType.Int), new AttrSpec("size", AttrType.Dims)),
            Grad(OpNames.SliceGrad, "(g) {dim, start, size} → zeros with g at [start, …)", 1,
                KernelCall.Static("Kernels.SliceGrad", In(0), Int("dim"), Int("start"), Dims("size")),
                new AttrSpec("dim", AttrType.Int), new AttrSpec("start", AttrType.Int), new AttrSpec("size", AttrType.Dims)),
            Grad(OpNames.EmbeddingGrad, "(g, ids) {rows} → [rows, H] scatter-added", 2, KernelCall.Static("Kernels.EmbeddingGrad", In(0), In(1), Int("rows")), new AttrSpec("rows", AttrType.Int)),
            Grad(OpNames.RowsGrad, "(g) {rows} → [rows, H], g in the first rows", 1, KernelCall.Static("Kernels.RowsGrad", In(0), Int("rows")), new AttrSpec("rows", AttrType.Int)),
            Grad(OpNames.SdpaGrad, "(dy, q, k, v, mask) → dq, dk, dv stacked [3, ...]", 5, KernelCall.Static("Kernels.AttentionGrad", In(0), In(1), In(2), In(3), In(4))),
        };

        private static OpDef Source(string name, string summary, params AttrSpec[] attrs) =>
            new(name, OpKind.Source, summary) { Attrs = attrs };

        private static OpDef Binary(string name, string torch, string onnx, params GradTerm[] grads) =>
            new(name, OpKind.Primitive, $"(a, b) → {name}, broadcasting")
            {
                MinInputs = 2, MaxInputs = 2,
                Gradient = GradientSpec.Rules(grads),
                Kernel = KernelCall.Static(torch, In(0), In(1)),
                Onnx = OnnxMapping.Direct(onnx),
            };

        private static OpDef Grad(string name, string summary, int inputs, KernelCall kernel, params AttrSpec[] attrs) =>
            new(name, OpKind.Gradient, summary)
            {
                MinInputs = inputs, MaxInputs = inputs, Attrs = attrs,
                Gradient = GradientSpec.None(NotDifferentiableBackward),
                Kernel = kernel,
                Onnx = OnnxMapping.None(NotExportedBackward),
            };

        /// <summary>The int8 GEMMs: inputs (x, weight i8, weight_scale, input_scale[, bias][, output_scale]); the kernel
        /// takes (x, input_scale, weight, weight_scale, bias, gelu[, output_scale], mode).</summary>
        private static OpDef QLinear(string name, bool gelu, bool requantize)
        {
            var args = new List<KernelArg> { In(0), In(3), In(1), In(2), Optional(4, requantize ? 6 : 5), Flag("gelu: ", gelu) };
            if (requantize)
            {
                args.Add(Last());
            }

            args.Add(Mode());
            return new OpDef(name, OpKind.Quantized, requantize
                ? "(x, weight i8, weight_scale, input_scale, bias?, output_scale) → i8, quantized for the next int8 GEMM"
                : "(x f32 or i8, weight i8 [N, K], weight_scale [N], input_scale [], bias [N]?) → f32")
            {
                MinInputs = requantize ? 5 : 4,
                MaxInputs = requantize ? 6 : 5,
                Attrs = new[] { new AttrSpec("mode", AttrType.Text, optional: true) },
                Decomposition = (gelu ? "gelu(" : "") + "linear(dequantize(quantize(x, input_scale)), dequantize(weight, weight_scale), bias)" + (gelu ? ")" : "") + (requantize ? ", quantized with output_scale" : ""),
                Gradient = GradientSpec.None("the int8 variant is inference only"),
                Kernel = KernelCall.Static(requantize ? "Kernels.QuantizedLinearRequantize" : "Kernels.QuantizedLinear", args.ToArray()),
                Onnx = OnnxMapping.Exporter("QuantizeLinear → MatMulInteger → Cast → Mul(scales) → Add(bias) [→ GELU] [→ QuantizeLinear]"),
            };
        }

        /// <summary>x / √(mean(x²) + eps) · weight over the last axis. ONNX's RMSNormalization is opset 23; below it the
        /// formula, with ReduceMean's axes an attribute before opset 18 and an input from it.</summary>
        private static string RmsNorm(IOnnxBuilder b)
        {
            var (x, weight, eps) = (b.Input(0), b.Input(1), b.Float("eps"));
            if (b.Opset >= 23)
            {
                return b.Emit("RMSNormalization", new[] { x, weight }, OnnxAttr.Int("axis", -1), OnnxAttr.Float("epsilon", (float)eps));
            }

            var squares = b.Emit("Mul", new[] { x, x });
            var meanSquare = b.Opset >= 18
                ? b.Emit("ReduceMean", new[] { squares, b.Int64s(-1) }, OnnxAttr.Int("keepdims", 1))
                : b.Emit("ReduceMean", new[] { squares }, OnnxAttr.Ints("axes", -1), OnnxAttr.Int("keepdims", 1));
            var rms = b.Emit("Sqrt", new[] { b.Emit("Add", new[] { meanSquare, b.Scalar(eps) }) });
            return b.Emit("Mul", new[] { b.Emit("Div", new[] { x, rms }), weight });
        }

        private static string Softmax(IOnnxBuilder b, string x) => b.Emit("Softmax", new[] { x }, OnnxAttr.Int("axis", -1));

        private static string LayerNorm(IOnnxBuilder b, string x, int firstParam) =>
            b.Emit("LayerNormalization", new[] { x, b.Input(firstParam), b.Input(firstParam + 1) }, OnnxAttr.Int("axis", -1), OnnxAttr.Float("epsilon", (float)b.Float("eps")));
    }
}
