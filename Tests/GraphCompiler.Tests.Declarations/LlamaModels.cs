using GraphCompiler;
using static GraphCompiler.Ops;

namespace GraphCompiler.Tests.Declarations;

// A small LLaMA-style pre-norm encoder (RMSNorm, bias-free projections, SwiGLU feed-forward): the proof that RMSNorm
// and SiLU, added through the op registry, run forward, backward, interpreted and in ONNX Runtime.

/// <summary>RMSNorm → attention → residual; RMSNorm → SwiGLU (down(silu(gate(x)) · up(x))) → residual. HF LLaMA
/// parameter names, no biases, no dropout (so training graphs keep fused attention).</summary>
[Block]
public partial class LlamaLayer
{
    [Hyper] public int Hidden;
    [Hyper] public int Heads;
    [Hyper] public int Ffn;
    [Hyper] public double Eps = 1e-6;

    [Forward]
    public Expr Forward(Expr x, Expr mask)
    {
        var h = RmsNorm(x, Hidden, Eps, "input_layernorm");
        var q = Linear(h, Hidden, Hidden, "self_attn.q_proj", bias: false);
        var k = Linear(h, Hidden, Hidden, "self_attn.k_proj", bias: false);
        var v = Linear(h, Hidden, Hidden, "self_attn.v_proj", bias: false);
        var attended = x + Linear(Attention(q, k, v, mask, Heads, 0.0), Hidden, Hidden, "self_attn.o_proj", bias: false);
        var n = RmsNorm(attended, Hidden, Eps, "post_attention_layernorm");
        var gate = Silu(Linear(n, Hidden, Ffn, "mlp.gate_proj", bias: false));
        var up = Linear(n, Hidden, Ffn, "mlp.up_proj", bias: false);
        return attended + Linear(gate * up, Ffn, Hidden, "mlp.down_proj", bias: false);
    }
}

/// <summary>Two LLaMA layers and the final RMSNorm over float32 hidden states. Output [batch, seq, 16].</summary>
[Model("num_llama")]
[StaticShapes(Batch = 2, SeqLens = new[] { 5, 8 })]
public partial class LlamaModel
{
    [Hyper] public int Hidden = 16;

    [Forward]
    public Expr Forward(
        [Input(DType.Float32, "batch", "seq", "Hidden")] Expr x,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var mask = LengthMask(validLength, x);
        var encoded = Repeat(2, "layers", new LlamaLayer { Hidden = Hidden, Heads = 4, Ffn = 24 }, x, mask);
        return RmsNorm(encoded, Hidden, 1e-6, "norm");
    }
}

/// <summary>The same in float64, for the gradient checks against libtorch autograd and finite differences.</summary>
[Model("grad_llama")]
[StaticShapes(Batch = 2, SeqLens = new[] { 5, 8 })]
public partial class GradLlamaModel
{
    [Hyper] public int Hidden = 8;

    [Forward]
    public Expr Forward(
        [Input(DType.Float64, "batch", "seq", "Hidden")] Expr x,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var mask = LengthMask(validLength, x);
        var encoded = Repeat(2, "layers", new LlamaLayer { Hidden = Hidden, Heads = 2, Ffn = 12 }, x, mask);
        return RmsNorm(encoded, Hidden, 1e-6, "norm");
    }
}
