using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Quantization;

/// <summary>Receives the activations entering each GEMM that the int8 variant quantizes, during a calibration forward
/// (<c>ForwardObserved</c>). <paramref name="slot"/> names the GEMM (its weight's name without ".weight");
/// <paramref name="kind"/> is one of <see cref="ActivationKinds"/>. The tensor is only valid during the call.</summary>
public interface IActivationObserver
{
    void Observe(string slot, string kind, Tensor value);
}

/// <summary>What produced an observed activation; calibrators may treat the kinds differently (e.g. GELU outputs are
/// one-sided, attention outputs have outliers).</summary>
public static class ActivationKinds
{
    public const string LayerNormOutput = "layer_norm_output", GeluOutput = "gelu_output", AttentionOutput = "attention_output", Other = "other";
}
