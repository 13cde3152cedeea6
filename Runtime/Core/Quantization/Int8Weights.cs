using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Quantization;

/// <summary>Symmetric per-output-channel int8 weights: row n of an [N, K] weight is stored as round(w / sₙ) clamped to
/// ±127 with sₙ = max|row n| / 127 (an all-zero row gets sₙ = 1, so it stays exactly zero and never divides by 0).</summary>
public static class Int8Weights
{
    /// <summary>f32 [N, K] → (i8 [N, K], f32 [N]); rounding is half to even, as torch.round.</summary>
    public static (Tensor Values, Tensor Scales) QuantizePerChannel(Tensor weight) => QuantizePerChannel(weight, "weight");

    /// <summary>As <see cref="QuantizePerChannel(Tensor)"/>; <paramref name="name"/> names the weight in errors.</summary>
    public static (Tensor Values, Tensor Scales) QuantizePerChannel(Tensor weight, string name)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.dtype != ScalarType.Float32 || weight.dim() != 2)
        {
            throw new ArgumentException($"{name}: per-channel int8 quantization needs an f32 [N, K] weight, got {weight.dtype} [{string.Join(", ", weight.shape)}]", nameof(weight));
        }

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var amax = weight.abs().amax(new long[] { 1 });
        if (!amax.isfinite().all().item<bool>())
        {
            throw new ArgumentException($"{name}: the weight has non-finite values (row {amax.isfinite().logical_not().nonzero()[0, 0].item<long>()}); it cannot be quantized", nameof(weight));
        }

        var scales = amax.div(127f).masked_fill_(amax.eq(0), 1f);
        var values = weight.div(scales.unsqueeze(1)).round_().clamp_(-127, 127).to(ScalarType.Int8);
        return (values.MoveToOuterDisposeScope(), scales.MoveToOuterDisposeScope());
    }

    /// <summary>i8 [N, K] × f32 [N] → f32 [N, K]: what the quantized weight stands for.</summary>
    public static Tensor Dequantize(Tensor values, Tensor scales)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(scales);
        if (values.dtype != ScalarType.Int8 || values.dim() != 2)
        {
            throw new ArgumentException($"Dequantize: values must be i8 [N, K], got {values.dtype} [{string.Join(", ", values.shape)}]", nameof(values));
        }

        if (scales.dtype != ScalarType.Float32 || scales.dim() != 1 || scales.shape[0] != values.shape[0])
        {
            throw new ArgumentException($"Dequantize: scales must be f32 [{values.shape[0]}], got {scales.dtype} [{string.Join(", ", scales.shape)}]", nameof(scales));
        }

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return values.to(ScalarType.Float32).mul_(scales.unsqueeze(1)).MoveToOuterDisposeScope();
    }
}
