using GraphCompiler.ModelDefs;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime.Weights;
using Xunit;

namespace GraphCompiler.Tests.Weights;

/// <summary>ModelZoo.GetModel's errors and ModelSummary.</summary>
public sealed class ZooTests
{
    [Fact]
    public void UnknownModelNameListsTheKnownNames()
    {
        var ex = Assert.Throws<ArgumentException>(() => ModelZoo.GetModel("bert_base"));
        Assert.Contains("'bert_base'", ex.Message, StringComparison.Ordinal);
        foreach (var name in new[] { "bert_12_768_12", "bert_24_1024_16", "minilm", "minilm_encoder", "minilm_regression" })
        {
            Assert.Contains(name, ex.Message, StringComparison.Ordinal);
        }

        Assert.Equal(5, ModelZoo.Names.Count);
    }

    [Fact]
    public void BertPretrainedWithoutWeightsPathIsAClearError()
    {
        var ex = Assert.Throws<ArgumentException>(() => ModelZoo.GetModel("bert_12_768_12", pretrained: true));
        Assert.Equal("weights", ex.ParamName);
        Assert.Contains("'bert_12_768_12' has no embedded pretrained weights", ex.Message, StringComparison.Ordinal);
        Assert.Contains(".params", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownWeightFormatNamesTheFile()
    {
        var path = Path.Combine(Path.GetTempPath(), "weights.bin");
        var ex = Assert.Throws<WeightFileException>(() => ModelZoo.GetModel("minilm", pretrained: true, weights: path));
        Assert.Equal(path, ex.File);
        Assert.Contains("unknown weight format '.bin'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SummaryOfMiniLmNamesTheModelTheRepeatedLayersAndTheTotal()
    {
        using var model = new MiniLmClassifierModule();
        var summary = ModelSummary.Describe(model);
        var firstLine = summary.Split('\n')[0];
        Assert.StartsWith("minilm (22,713,986 parameters; static shapes ", firstLine, StringComparison.Ordinal);
        Assert.Contains("encoder.layer.0-5 (6×): 10,646,784", summary, StringComparison.Ordinal);
        Assert.Contains("    attention.self.query.weight [384, 384]", summary, StringComparison.Ordinal);
        Assert.Contains("  classifier: 770", summary, StringComparison.Ordinal);
        Assert.DoesNotContain("encoder.layer.1", summary, StringComparison.Ordinal);
    }
}
