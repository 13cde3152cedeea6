namespace GraphCompiler.Runtime.Quantization;

/// <summary>How an int8 GEMM quantizes its input activation.</summary>
public enum ActivationQuantization
{
    /// <summary>A per-tensor scale fixed at calibration (the module's input_scale buffers).</summary>
    Static,
    /// <summary>A per-tensor scale taken from each call's input, max|x|/127: no calibration, a reduction per GEMM.</summary>
    Dynamic,
}
