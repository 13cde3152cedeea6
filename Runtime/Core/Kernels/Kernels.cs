using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>The kernels generated code calls, one per fused or primitive IR op. The symbol interpreter calls the same
/// ones, so there is one implementation of each op's numerics.</summary>
public static partial class Kernels
{
    /// <summary>Gather rows of <paramref name="table"/> [vocab, dim] for ids of any shape → [..., dim].</summary>
    public static Tensor Embedding(Tensor ids, Tensor table)
    {
        var shape = ids.shape.Append(table.shape[1]).ToArray();
        using var flat = ids.reshape(-1);
        using var rows = table.index_select(0, flat);
        return rows.reshape(shape);
    }

    /// <summary>The first <paramref name="count"/> rows of a table (learned positions for a sequence).</summary>
    public static Tensor Rows(Tensor table, long count) => table.narrow(0, 0, count);

    /// <summary>x·Wᵀ + b as one GEMM (addmm folds the bias in; <see cref="FloatGemm"/> may take it instead).</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias) =>
        FloatGemm.TryLinear(x, weight, bias, gelu: false) ?? nn.functional.linear(x, weight, bias);

    /// <summary>gelu(x·Wᵀ + b); without autograd the activation runs in place on the GEMM's output.</summary>
    public static Tensor LinearGelu(Tensor x, Tensor weight, Tensor? bias)
    {
        if (FloatGemm.TryLinear(x, weight, bias, gelu: true) is { } fused)
        {
            return fused;
        }

        var y = nn.functional.linear(x, weight, bias);
        if (NeedsGrad(x, weight, bias))
        {
            using (y)
            {
                return nn.functional.gelu(y);
            }
        }

        return y.gelu_();
    }

    public static Tensor MatMul(Tensor a, Tensor b, bool transB)
    {
        if (!transB)
        {
            return matmul(a, b);
        }

        using var bt = b.transpose(-2, -1);
        return matmul(a, bt);
    }

    /// <summary>GELU, exact erf form; without autograd on CPU float32, one AVX-512 pass (<see cref="VectorMath.Gelu"/>).</summary>
    public static Tensor Gelu(Tensor x) =>
        !(is_grad_enabled() && x.requires_grad) && CpuTrainingLoops.AppliesElementwise(x) ? CpuTrainingLoops.Gelu(x) : nn.functional.gelu(x);

    /// <summary>softmax(x + mask) over the last dimension.</summary>
    public static Tensor MaskedSoftmax(Tensor x, Tensor mask)
    {
        if (CpuTrainingLoops.AppliesMaskedSoftmax(x, mask))
        {
            return CpuTrainingLoops.MaskedSoftmax(x, mask);
        }

        using var sum = add(x, mask);
        return softmax(sum, -1);
    }

    public static Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias, double eps) =>
        nn.functional.layer_norm(x, new[] { x.shape[^1] }, weight, bias, eps);

    /// <summary>layer_norm(a + b): the residual sum is a temporary, summed in place when no gradient needs it.</summary>
    public static Tensor AddLayerNorm(Tensor a, Tensor b, Tensor weight, Tensor bias, double eps)
    {
        using var sum = add(a, b);
        return nn.functional.layer_norm(sum, new[] { sum.shape[^1] }, weight, bias, eps);
    }

    /// <summary>RMSNorm over the last dimension: x / √(mean(x²) + eps) · weight (no centring, no bias). A torch
    /// composition, so autograd records it in the gradient checks.</summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, double eps)
    {
        using var scope = NewDisposeScope();
        // Out of place: autograd records this composition in training forwards and the gradient checks.
        var rstd = ((x * x).mean(new long[] { -1 }, keepdim: true) + eps).rsqrt();
        return (x * rstd * weight).MoveToOuterDisposeScope();
    }

    /// <summary>SiLU (swish): x·σ(x).</summary>
    public static Tensor Silu(Tensor x) => nn.functional.silu(x);

    /// <summary>Inverted dropout in training, identity (an alias, never the input itself) in eval.</summary>
    public static Tensor Dropout(Tensor x, double p, bool training) =>
        training && p > 0 ? nn.functional.dropout(x, p, training: true) : x.alias();

    /// <summary>Multi-head attention core on [batch, heads, seq, headDim] with an additive mask (scale 1/√headDim).
    /// Inference on CPU float32 takes the hand-written <see cref="CpuAttention"/>: libtorch's CPU
    /// scaled_dot_product_attention runs small head dims at well under GEMM speed. Everything else (dropout, autograd,
    /// other devices and dtypes) goes to libtorch's fused scaled_dot_product_attention.</summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor mask, double dropout, bool training)
    {
        if ((!training || dropout == 0) && CpuAttention.Applies(q, k, v, mask))
        {
            return CpuAttention.Run(q, k, v, mask);
        }

        // libtorch 2.10's CPU kernel misreads an additive mask of another dtype (a float32 length mask on float64
        // q/k/v is wrong from seq 8 on AVX2 and seq 16 on AVX-512), so the mask always arrives in q's dtype.
        using var converted = mask.dtype == q.dtype ? null : mask.to(q.dtype);
        return nn.functional.scaled_dot_product_attention(q, k, v, converted ?? mask, training ? dropout : 0.0, false);
    }

    /// <summary>Additive mask [batch, 1, 1, seq] from valid lengths: 0 for positions below the length, the dtype's
    /// lowest finite value elsewhere (a fully masked row stays finite).</summary>
    public static Tensor LengthMask(Tensor validLength, long seq, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var positions = arange(seq, dtype: ScalarType.Int64, device: validLength.device);
        var padded = positions.unsqueeze(0).ge(validLength.unsqueeze(1));
        var lowest = dtype == ScalarType.Float64 ? double.MinValue : float.MinValue;
        var mask = zeros(new[] { validLength.shape[0], seq }, dtype, validLength.device).masked_fill(padded, lowest);
        return mask.view(validLength.shape[0], 1, 1, seq).MoveToOuterDisposeScope();
    }

    /// <summary>Releases values after their last use, so peak memory follows the graph's liveness, not the scope's.</summary>
    public static void Free(params Tensor[] tensors)
    {
        foreach (var t in tensors)
        {
            t.Dispose();
        }
    }

    private static bool NeedsGrad(Tensor x, Tensor weight, Tensor? bias) =>
        is_grad_enabled() && (x.requires_grad || weight.requires_grad || (bias?.requires_grad ?? false));
}
