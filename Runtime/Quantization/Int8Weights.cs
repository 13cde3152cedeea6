using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Quantization;

/// <summary>Weight quantization for the int8 GEMMs.</summary>
public static class Int8Weights
{
    /// <summary>Symmetric per-output-channel int8: f32 [N, K] → (i8 [N, K], f32 [N]) with scale = max|row|/127 (an
    /// all-zero row gets scale 1), values rounded half to even and clamped to ±127.</summary>
    public static (Tensor Values, Tensor Scales) QuantizePerChannel(Tensor weight)
    {
        if (weight.dim() != 2 || !weight.is_floating_point())
        {
            throw new ArgumentException($"QuantizePerChannel: the weight must be a floating-point [N, K] matrix, got {weight.dtype} [{string.Join(", ", weight.shape)}]", nameof(weight));
        }

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w = weight.to_type(ScalarType.Float32);
        var maxAbs = w.abs().amax(1);
        var scales = where(maxAbs.eq(0), ones_like(maxAbs), maxAbs.div(127.0f));
        // torch.round rounds half to even.
        var values = w.div(scales.unsqueeze(1)).round().clamp(-127, 127).to_type(ScalarType.Int8);
        return (values.MoveToOuterDisposeScope(), scales.MoveToOuterDisposeScope());
    }
}
