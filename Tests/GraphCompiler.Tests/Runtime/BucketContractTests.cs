using GraphCompiler.Tests.Declarations;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Runtime;

/// <summary>One body serves every declared bucket; the declared buckets stay the contract: a shape outside them is refused
/// before the body runs, in inference and in training, with the error that names the buckets.</summary>
public sealed class BucketContractTests
{
    [Fact]
    public void IsBucketIsTheDeclaredList()
    {
        Assert.True(EncoderModelModule.IsBucket(2, 5));
        Assert.True(EncoderModelModule.IsBucket(2, 8));
        Assert.False(EncoderModelModule.IsBucket(2, 6));
        Assert.False(EncoderModelModule.IsBucket(4, 8));
    }

    [Theory]
    [InlineData(2, 6, false)]
    [InlineData(3, 5, false)]
    [InlineData(2, 6, true)]
    public void AShapeOutsideTheBucketsIsRefused(int batch, int seq, bool train)
    {
        using var scope = NewDisposeScope();
        using var module = new EncoderModelModule();
        if (train)
        {
            module.train();
        }
        else
        {
            module.eval();
        }

        var error = Assert.Throws<ArgumentException>(() => module.call(randn(batch, seq, 16), full(batch, (long)seq)));
        Assert.Contains($"has no forward for batch {batch} × sequence length {seq}: it was compiled for 2×5, 2×8", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryDeclaredBucketRunsTheSharedBody()
    {
        using var scope = NewDisposeScope();
        using var module = new EncoderModelModule();
        module.eval();
        foreach (var seq in new[] { 5, 8 })
        {
            Assert.Equal(new long[] { 2, seq, 32 }, module.call(randn(2, seq, 16), full(2, (long)seq)).shape);
        }
    }
}
