using GraphCompiler.Runtime.Quantization;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>The int8 kernels of the quantized graph variant (inference only).</summary>
public static partial class Kernels
{
    /// <summary>y = dequant(quant(x) · Wqᵀ) + b, GELU after the bias when <paramref name="gelu"/>.
    /// x f32 [..., K] is quantized per tensor, symmetric: q = clamp(round(x / s), ±127) (half to even), with s the
    /// calibrated <paramref name="inputScale"/> (f32, shape []) in <see cref="ActivationQuantization.Static"/> mode or
    /// max|x| / 127 of this x in <see cref="ActivationQuantization.Dynamic"/> mode (1 for an all-zero x).
    /// <paramref name="weight"/> i8 [N, K] with per-output-channel scales <paramref name="weightScale"/> f32 [N];
    /// the GEMM is exact int8 × int8 → int32 (<see cref="Int8Gemm"/>), and y[m, n] = acc[m, n]·(s·wₙ) + bₙ in f32.</summary>
    public static Tensor QuantizedLinear(Tensor x, Tensor inputScale, Tensor weight, Tensor weightScale, Tensor? bias, bool gelu, ActivationQuantization mode)
    {
        CheckQuantizedLinear(x, inputScale, weight, weightScale, bias, mode);
        var (k, n) = (weight.shape[1], weight.shape[0]);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var x2 = x.reshape(-1, k);
        var scale = mode == ActivationQuantization.Static ? inputScale : DynamicActivationScale(x2);
        var q = QuantizeActivation(x2, scale);
        var acc = empty(new[] { x2.shape[0], n }, ScalarType.Int32, x.device);
        using (var wt = weight.t())
        {
            Int8Gemm.MatMulInto(q, wt, acc);
        }

        q.Dispose();

        // One pass from the int32 accumulators to f32: acc·(s·w) (+ b) with the scales combined into one [N] vector.
        var combined = weightScale.mul(scale);
        var y = bias is null ? acc.mul(combined) : bias.addcmul(acc, combined, 1);
        acc.Dispose();
        if (gelu)
        {
            y.gelu_();
        }

        var shape = x.shape.ToArray();
        shape[^1] = n;
        return y.view(shape).MoveToOuterDisposeScope();
    }

    /// <summary>An observation point of a calibration run: hands x to the observer (if any) and returns x itself.</summary>
    public static Tensor Observe(Tensor x, IActivationObserver? observer, string slot, string kind)
    {
        observer?.Observe(slot, kind, x);
        return x;
    }

    /// <summary>clamp(round(x / scale), ±127) as int8; scale a tensor of one element (kept on the device: no sync).</summary>
    public static Tensor QuantizeActivation(Tensor x, Tensor scale)
    {
        using var scaled = x.div(scale);
        scaled.round_().clamp_(-127, 127);
        return scaled.to(ScalarType.Int8);
    }

    /// <summary>max|x| / 127, or 1 when x is all zero, as a scalar tensor on x's device.</summary>
    public static Tensor DynamicActivationScale(Tensor x)
    {
        using var amax = linalg.vector_norm(x, double.PositiveInfinity);
        using var zero = amax.eq(0);
        return amax.div(127f).masked_fill_(zero, 1f);
    }

    private static void CheckQuantizedLinear(Tensor x, Tensor inputScale, Tensor weight, Tensor weightScale, Tensor? bias, ActivationQuantization mode)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(weightScale);
        if (weight.dtype != ScalarType.Int8 || weight.dim() != 2)
        {
            throw new ArgumentException($"QuantizedLinear: weight must be i8 [N, K], got {weight.dtype} {Dims(weight)}", nameof(weight));
        }

        var (n, k) = (weight.shape[0], weight.shape[1]);
        if (x.dtype != ScalarType.Float32 || x.dim() < 1 || x.shape[^1] != k)
        {
            throw new ArgumentException($"QuantizedLinear: x must be f32 [..., {k}] for weight {Dims(weight)}, got {x.dtype} {Dims(x)}", nameof(x));
        }

        if (weightScale.dtype != ScalarType.Float32 || weightScale.dim() != 1 || weightScale.shape[0] != n)
        {
            throw new ArgumentException($"QuantizedLinear: weightScale must be f32 [{n}], got {weightScale.dtype} {Dims(weightScale)}", nameof(weightScale));
        }

        if (bias is not null && (bias.dtype != ScalarType.Float32 || bias.dim() != 1 || bias.shape[0] != n))
        {
            throw new ArgumentException($"QuantizedLinear: bias must be f32 [{n}], got {bias.dtype} {Dims(bias)}", nameof(bias));
        }

        if (mode == ActivationQuantization.Static)
        {
            ArgumentNullException.ThrowIfNull(inputScale);
            if (inputScale.dtype != ScalarType.Float32 || inputScale.dim() != 0)
            {
                throw new ArgumentException($"QuantizedLinear: inputScale must be an f32 scalar tensor (shape []), got {inputScale.dtype} {Dims(inputScale)}", nameof(inputScale));
            }
        }
        else if (mode != ActivationQuantization.Dynamic)
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "QuantizedLinear: unknown activation quantization mode");
        }

        foreach (var (t, name) in new[] { (weight, nameof(weight)), (weightScale, nameof(weightScale)), (bias, nameof(bias)), (mode == ActivationQuantization.Static ? inputScale : null, nameof(inputScale)) })
        {
            if (t is not null && !Int8Gemm.SameDevice(t, x))
            {
                throw new ArgumentException($"QuantizedLinear: {name} is on {t.device}, x on {x.device}", name);
            }
        }
    }

    private static string Dims(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}
