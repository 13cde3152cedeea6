using GraphCompiler.Runtime.Quantization;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Quantization;

public sealed class Int8WeightsTests
{
    [Fact]
    public void RoundTripErrorIsAtMostHalfAStepPerElement()
    {
        using var scope = NewDisposeScope();
        var seeded = new Seeded(31);
        var w = seeded.Normal(24, 40).mul_(seeded.Uniform(0.01, 3, 24, 1)); // rows of very different magnitude
        var (values, scales) = Int8Weights.QuantizePerChannel(w);
        Assert.Equal(ScalarType.Int8, values.dtype);
        Assert.Equal(new long[] { 24, 40 }, values.shape);
        Assert.Equal(new long[] { 24 }, scales.shape);
        Assert.True(scales.allclose(w.abs().amax(new long[] { 1 }).div(127f), rtol: 0, atol: 0), "scale = max|row| / 127");
        Assert.True(values.abs().amax(new long[] { 1 }).eq(127).all().item<bool>(), "every row's largest value maps to ±127");

        var back = Int8Weights.Dequantize(values, scales);
        var error = back.sub(w).abs();
        var halfStep = scales.unsqueeze(1).mul(0.5f).mul(1 + 1e-6f); // f32 division and product round once each
        Assert.True(error.le(halfStep).all().item<bool>(), $"max error {error.max().item<float>()}");
    }

    [Fact]
    public void AZeroRowGetsScaleOneAndStaysZero()
    {
        using var scope = NewDisposeScope();
        var w = stack(new[] { zeros(5), tensor(new[] { 1f, -2f, 0f, 0.5f, 2f }), zeros(5) });
        var (values, scales) = Int8Weights.QuantizePerChannel(w);
        Assert.Equal(new[] { 1f, 2f / 127f, 1f }, scales.data<float>().ToArray());
        Assert.Equal(0, values[0].abs().sum().item<long>());
        Assert.Equal(0, values[2].abs().sum().item<long>());
        Assert.Equal(new sbyte[] { 64, -127, 0, 32, 127 }, values[1].data<sbyte>().ToArray());
    }

    [Fact]
    public void TiesRoundToEven()
    {
        using var scope = NewDisposeScope();

        // max|row| = 127 gives scale 1, so w / scale hits .5 exactly.
        var w = tensor(new[] { 0.5f, 1.5f, 2.5f, -2.5f, -3.5f, 126.5f, 127f }).reshape(1, 7);
        var (values, _) = Int8Weights.QuantizePerChannel(w);
        Assert.Equal(new sbyte[] { 0, 2, 2, -2, -4, 126, 127 }, values.data<sbyte>().ToArray());
    }

    [Fact]
    public void BadWeightsAreClearErrors()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => Int8Weights.QuantizePerChannel(zeros(4, 4, ScalarType.Float64), "encoder.layer.0.output.dense.weight"));
        Assert.Contains("encoder.layer.0.output.dense.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("f32 [N, K]", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Int8Weights.QuantizePerChannel(zeros(4)));
        var nan = ones(3, 2);
        nan[1, 1] = tensor(float.NaN);
        e = Assert.Throws<ArgumentException>(() => Int8Weights.QuantizePerChannel(nan, "w"));
        Assert.Contains("non-finite values (row 1)", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Int8Weights.Dequantize(zeros(2, 2), ones(2)));
        Assert.Throws<ArgumentException>(() => Int8Weights.Dequantize(zeros(2, 2, ScalarType.Int8), ones(3)));
    }
}
