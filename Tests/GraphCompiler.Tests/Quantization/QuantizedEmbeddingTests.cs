using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Quantization;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Quantization;

public sealed class QuantizedEmbeddingTests
{
    /// <summary>Gather-then-dequantize is bit-exact with dequantize-then-gather (one f32 multiply per element either
    /// way), for ids of rank 1 to 3, repeated ids and the first and last rows.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void EqualsDequantizeThenGatherExactly(int rank)
    {
        using var scope = NewDisposeScope();
        manual_seed(rank);
        var (table, scale) = Int8Weights.QuantizePerChannel(randn(50, 12) * rand(50, 1) * 4);
        var shape = new long[] { 3, 5, 2 }.Take(rank).ToArray();
        var count = shape.Aggregate(1L, (a, b) => a * b);
        var ids = cat(new[] { tensor(new long[] { 0, 49, 49 }), randint(0, 50, new[] { count - 3 }, dtype: ScalarType.Int64) }).reshape(shape);

        var actual = Kernels.QuantizedEmbedding(ids, table, scale);
        var expected = Kernels.Embedding(ids, Int8Weights.Dequantize(table, scale));

        Assert.Equal(ScalarType.Float32, actual.dtype);
        Assert.Equal(shape.Append(12L).ToArray(), actual.shape);
        Assert.True(actual.eq(expected).all().item<bool>(), $"max |Δ| {(actual - expected).abs().max().item<float>():E2}");
    }

    /// <summary>Per-row int8 keeps every looked-up value within half a step of its row's scale of the fp32 table.</summary>
    [Fact]
    public void StaysWithinHalfAStepOfTheFloatTable()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var weights = randn(30, 16) * 0.05f;
        var (table, scale) = Int8Weights.QuantizePerChannel(weights);
        var ids = arange(30L).flip(0);
        var error = (Kernels.QuantizedEmbedding(ids, table, scale) - Kernels.Embedding(ids, weights)).abs();
        var bound = scale.index_select(0, ids).unsqueeze(1) * 0.5f + 1e-7f;
        Assert.True(error.le(bound).all().item<bool>(), $"max |Δ| {error.max().item<float>():E2}");
    }

    [Fact]
    public void WrongDtypesAndShapesAreClearErrors()
    {
        using var scope = NewDisposeScope();
        var ids = zeros(new long[] { 2, 3 }, ScalarType.Int64);
        var (table, scale) = Int8Weights.QuantizePerChannel(ones(10, 4));
        AssertError(() => Kernels.QuantizedEmbedding(ids, ones(10, 4), scale), "table", "table must be i8 [V, H], got Float32 [10, 4]");
        AssertError(() => Kernels.QuantizedEmbedding(ids, table.reshape(40), scale), "table", "table must be i8 [V, H], got Int8 [40]");
        AssertError(() => Kernels.QuantizedEmbedding(ids, table, ones(9)), "scale", "scale must be f32 [10] (one per table row), got Float32 [9]");
        AssertError(() => Kernels.QuantizedEmbedding(ids, table, scale.to(ScalarType.Float64)), "scale", "scale must be f32 [10]");
        AssertError(() => Kernels.QuantizedEmbedding(ids.to(ScalarType.Int32), table, scale), "ids", "ids must be i64, got Int32 [2, 3]");
    }

    private static void AssertError(Action call, string parameter, string expected)
    {
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(parameter, e.ParamName);
        Assert.Contains("QuantizedEmbedding: " + expected, e.Message);
    }
}
