using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Quantization;

/// <summary>Sees the activations a forward pass produces at its observation points (the inputs of quantized linears),
/// each named by its slot (e.g. the layer's parameter prefix) and the kind of op that produced it.</summary>
public interface IActivationObserver
{
    /// <summary>Called during the forward; <paramref name="value"/> belongs to the caller and is only valid during the
    /// call (an observer keeps statistics, never the tensor).</summary>
    void Observe(string slot, string kind, Tensor value);
}

/// <summary>The kinds of activation an observation point reports; collectors may treat them differently (GluonNLP clips
/// the long-tailed LayerNorm and GELU outputs).</summary>
public static class ActivationKinds
{
    public const string LayerNormOutput = "layer_norm_output", GeluOutput = "gelu_output", AttentionOutput = "attention_output", Other = "other";
}
