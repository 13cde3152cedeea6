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
    [InlineData("infer:onnxruntime-export:minilm:32")]
    [InlineData("infer:generated:minilm:128:1")]
    [InlineData("int8:generated:minilm:32")]
    [InlineData("int8:onnxruntime:minilm:32")]
    [InlineData("int8:generated:minilm:128:1")]
    [InlineData("train:generated:minilm:32")]
    public void CaseRunsAndReportsPositiveTimes(string spec)
    {
        var result = Cases.Run(spec, iterations: 1);
        Assert.True(result.MedianSeconds > 0, $"{spec}: median {result.MedianSeconds}");
        Assert.True(result.Gflop > 0);
        Assert.True(result.PeakBytes > 0);
        if (!spec.StartsWith("gemm", StringComparison.Ordinal))
        {
            Assert.Equal(spec.Split(':') is { Length: 5 } parts ? int.Parse(parts[4]) : 32, result.Batch);
        }
    }

    [Fact]
    public void GeneratorCasesTimeAFullRunAndAnIncrementalRunWithoutWork()
    {
        var full = Cases.Run("generate:full:12:0", iterations: 1);
        Assert.True(full.MedianSeconds > 0);
        Assert.Contains("characters generated", full.Note);
        var incremental = Cases.Run("generate:incremental:12:0", iterations: 1);
        Assert.Matches("all [0-9]+ tracked step outputs Cached/Unchanged", incremental.Note);
        Assert.True(incremental.MedianSeconds < full.MedianSeconds, $"incremental {incremental.MedianSeconds:F3} s ≥ full {full.MedianSeconds:F3} s");
    }

    [Fact]
    public void DataCaseCountsEveryMrpcDevPair()
    {
        var result = Cases.Run("data:mrpc:dev:128", iterations: 1);
        Assert.Equal(File.ReadLines(Path.Combine(DataCases.MrpcDir, "dev.tsv")).Count() - 1, result.Batch);
        Assert.True(result.SequencesPerSecond > 0);
    }

    [Fact]
    public void ReportHasTheInt8RatiosGeneratorAndDataSections()
    {
        CaseResult Row(string kind, string peer, int batch, double seconds, double gflop = 1) => new(kind, "minilm", peer, batch, 128, seconds, seconds, gflop, 1 << 20);
        var md = Report.Markdown(
            new[]
            {
                Row("inference fp32", "generated", 1, 0.2),
                Row("inference int8", "generated int8", 1, 0.1),
                Row("inference int8", "onnxruntime dynamic int8", 1, 0.3),
                Row("generator: full run", "fresh driver", 1, 0.5, 0) with { Note = "n" },
                Row("data: tokenize + batch", "MRPC dev", 408, 0.04, 0),
            },
            smoke: true,
            iterations: 1,
            machine: "test CPU");
        Assert.Contains("| minilm | 1×128 | 100.0 | 200.0 | 300.0 | 2.00× | 3.00× |", md);
        Assert.Contains("| generator: full run | minilm | fresh driver | 500.0 |", md);
        Assert.Contains("| data: tokenize + batch | minilm | MRPC dev | 408 | 128 | 40.0 | 10200 |", md);
    }

    [Fact]
    public void UnknownCaseIsAClearError()
    {
        var ex = Assert.Throws<ArgumentException>(() => Cases.Run("infer:onnxruntime:bert_12_768_12:32", 1));
        Assert.Contains("onnxruntime", ex.Message);
    }
}
