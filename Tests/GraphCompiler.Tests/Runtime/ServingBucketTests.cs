using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.Quantization;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Runtime;

/// <summary>A model with two [StaticShapes] (MiniLM: batch 32 for training, batch 1 × 128 for serving): the 1 × 128
/// forward is the 32 × 128 forward of the same rows, in fp32 and int8, and training keeps the batch-32 buckets.</summary>
[Collection(TorchRngCollection.Name)]
public class ServingBucketTests
{
    private static readonly int[] Rows = { 0, 13, 31 };

    private static (Tensor Ids, Tensor Types, Tensor Lengths) Inputs()
    {
        var ids = randint(1000, 30000, new long[] { 32, 128 });
        var types = zeros(new long[] { 32, 128 }, ScalarType.Int64);
        types[.., 64..] = tensor(1L);
        var lengths = randint(20, 129, new long[] { 32 });
        return (ids, types, lengths);
    }

    [Fact]
    public void MiniLmHasBothBatchSizes()
    {
        Assert.Contains(new StaticShapeBucket(1, 128), MiniLmClassifierModule.Buckets);
        Assert.Contains(new StaticShapeBucket(32, 128), MiniLmClassifierModule.Buckets);
        Assert.Contains(new StaticShapeBucket(1, 128), Bert12ClassifierModule.Buckets);
    }

    [Fact]
    public void Fp32_BatchOneForwardEqualsTheBatch32Row()
    {
        manual_seed(5);
        using var model = new MiniLmClassifierModule();
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (ids, types, lengths) = Inputs();
        var all = model.call(ids, types, lengths);
        foreach (var row in Rows)
        {
            var one = model.call(ids[row..(row + 1)], types[row..(row + 1)], lengths[row..(row + 1)]);
            Assert.Equal(new long[] { 1, 2 }, one.shape);
            var diff = (one[0] - all[row]).abs().max().item<float>();
            Assert.True(diff < 1e-4f, $"row {row}: 1×128 differs from 32×128 by {diff}");
        }
    }

    [Fact]
    public void Int8_BatchOneForwardEqualsTheBatch32Row()
    {
        manual_seed(6);
        using var model = new MiniLmClassifierModule();
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (ids, types, lengths) = Inputs();
        var collector = new MinMaxCollector();
        model.ForwardObserved(ids, types, lengths, collector);
        using var int8 = MiniLmClassifierInt8Module.FromFloat(model, collector.Scales());
        int8.eval();
        var all = int8.call(ids, types, lengths);
        foreach (var row in Rows)
        {
            var one = int8.call(ids[row..(row + 1)], types[row..(row + 1)], lengths[row..(row + 1)]);
            var diff = (one[0] - all[row]).abs().max().item<float>();
            Assert.True(diff < 1e-4f, $"row {row}: int8 1×128 differs from 32×128 by {diff}");
        }
    }

    [Fact]
    public void TrainingSamplerUsesTheLargestBatch()
    {
        using var model = new MiniLmClassifierModule();
        var sampler = FixedBucketSampler.ForModel(model, new[] { 10, 50, 100, 120 }, shuffle: false);
        Assert.Equal(32, sampler.BatchSize);
        Assert.Equal(new[] { 32, 48, 64, 80, 96, 128 }, sampler.SeqBuckets); // the 1×128 serving bucket adds no length
    }
}
