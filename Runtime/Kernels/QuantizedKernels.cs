using GraphCompiler.Runtime.Quantization;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

public static partial class Kernels
{
    /// <summary>int8 GEMM: x f32 [..., K] quantized per tensor (symmetric, scale <paramref name="inputScale"/> in Static
    /// mode, max|x|/127 per call in Dynamic mode) times i8 <paramref name="weight"/> [N, K] with per-channel
    /// <paramref name="weightScale"/> [N], dequantized, plus <paramref name="bias"/>, then GELU (erf) when asked.
    /// A float reference: the products of int8 values are exact in f32 up to K ≈ 1000 and their sums round as a float
    /// GEMM's do, so this matches an integer GEMM to f32 accumulation error.</summary>
    public static Tensor QuantizedLinear(Tensor x, Tensor inputScale, Tensor weight, Tensor weightScale, Tensor? bias, bool gelu, ActivationQuantization mode)
    {
        using var scope = NewDisposeScope();
        var scale = mode == ActivationQuantization.Dynamic
            ? x.abs().max().div(127.0f).clamp_min(float.Epsilon)
            : inputScale;
        var xq = x.div(scale).round_().clamp_(-127, 127);
        var wq = weight.to_type(ScalarType.Float32);
        var y = nn.functional.linear(xq, wq).mul_(weightScale.mul(scale));
        if (bias is not null)
        {
            y.add_(bias);
        }

        if (gelu)
        {
            y = nn.functional.gelu(y);
        }

        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Hands <paramref name="x"/> to the calibration observer (if any) under its slot and kind; returns x.</summary>
    public static Tensor Observe(Tensor x, IActivationObserver? observer, string slot, string kind)
    {
        observer?.Observe(slot, kind, x);
        return x;
    }
}
