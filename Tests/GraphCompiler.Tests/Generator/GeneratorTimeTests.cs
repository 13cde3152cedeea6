using System.Diagnostics;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace GraphCompiler.Tests.Generator;

/// <summary>The generator stays interactive on the largest everyday model: BERT-base (12 layers) with its int8 variant,
/// parsed, lowered, through every pipeline (inference, training + backward, calibration, int8) and emitted.</summary>
public class GeneratorTimeTests(ITestOutputHelper output)
{
    [Fact]
    public void TwelveLayerQuantizedModelGeneratesInUnderASecondWarm()
    {
        var blocks = File.ReadAllText(Path.Combine(Snapshot.Root, "..", "..", "ModelDefs", "Blocks", "BertBlocks.cs"));
        var models = File.ReadAllText(Path.Combine(Snapshot.Root, "..", "..", "ModelDefs", "Models", "BertModels.cs"));
        // Only the 12-layer classifier, as declared in ModelDefs (with its [Quantize]).
        var start = models.IndexOf("/// <summary>BERT-base", StringComparison.Ordinal);
        var end = models.IndexOf("/// <summary>BERT-large", StringComparison.Ordinal);
        Assert.True(start > 0 && end > start, "BertModels.cs no longer declares BERT-base before BERT-large");
        var model = models.Substring(0, models.IndexOf("///", StringComparison.Ordinal)) + models.Substring(start, end - start);
        Assert.Contains("[Quantize]", model);
        var compilation = GeneratorHarness.Compilation(("BertBlocks.cs", blocks), ("BertModels.cs", model));

        GeneratorHarness.Run(compilation); // cold: JIT, template parsing
        var times = new List<double>();
        for (var i = 0; i < 3; i++)
        {
            var clock = Stopwatch.StartNew();
            var (result, _) = GeneratorHarness.Run(compilation); // a fresh driver: nothing cached
            times.Add(clock.Elapsed.TotalSeconds);
            var source = Assert.Single(GeneratorHarness.ModuleTrees(result)).ToString();
            Assert.Contains("public sealed partial class Bert12ClassifierInt8Module", source);
        }

        times.Sort();
        output.WriteLine($"bert_12_768_12 (+ int8): warm generator runs {string.Join(", ", times.Select(t => $"{t * 1000:F0} ms"))}");
        Assert.True(times[0] < 1.0, $"the fastest warm run took {times[0]:F2} s");
    }
}
