using GraphCompiler.Benchmarks;
using Xunit;

namespace GraphCompiler.Tests.Benchmarks;

/// <summary>The benchmark harness's cases at tiny sizes, one iteration: so it never rots. Speed is not asserted.</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
public class BenchmarkSmokeTests
{
    [Theory]
    [InlineData("gemm:torch:128:0")]
    [InlineData("infer:generated:minilm:32")]
    [InlineData("infer:stock:minilm:32")]
    [InlineData("infer:onnxruntime:minilm:32")]
    [InlineData("train:generated:minilm:32")]
    public void CaseRunsAndReportsPositiveTimes(string spec)
    {
        var result = Cases.Run(spec, iterations: 1);
        Assert.True(result.MedianSeconds > 0, $"{spec}: median {result.MedianSeconds}");
        Assert.True(result.Gflop > 0);
        Assert.True(result.PeakBytes > 0);
    }

    [Fact]
    public void UnknownCaseIsAClearError()
    {
        var ex = Assert.Throws<ArgumentException>(() => Cases.Run("infer:onnxruntime:bert_12_768_12:32", 1));
        Assert.Contains("onnxruntime", ex.Message);
    }
}
