namespace GraphCompiler.Runtime.Quantization;

/// <summary>One GEMM that a model's int8 variant quantizes: <paramref name="Slot"/> is its weight's name without
/// ".weight" (the key of its input scale and of the calibration observations), <paramref name="Kind"/> one of
/// <see cref="ActivationKinds"/>, and the weight's in/out features.</summary>
public sealed record QuantizationSlot(string Slot, string Kind, string WeightName, long InFeatures, long OutFeatures);
