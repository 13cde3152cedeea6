namespace GraphCompiler.Runtime.Quantization;

/// <summary>How a quantized linear layer gets its activation scale.</summary>
public enum ActivationQuantization
{
    /// <summary>A per-tensor scale fixed by calibration (the layer's input-scale tensor).</summary>
    Static,

    /// <summary>max|x| / 127 of each call's input; needs no calibration, costs one reduction per call.</summary>
    Dynamic,
}
