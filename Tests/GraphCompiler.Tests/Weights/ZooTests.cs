using GraphCompiler.ModelDefs;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Weights;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Weights;

/// <summary>ModelZoo.GetModel's errors, ModelZoo.Reinitialize and ModelSummary.</summary>
public sealed class ZooTests
{
    [Fact]
    public void UnknownModelNameListsTheKnownNames()
    {
        var ex = Assert.Throws<ArgumentException>(() => ModelZoo.GetModel("bert_base"));
        Assert.Contains("'bert_base'", ex.Message, StringComparison.Ordinal);
        foreach (var name in new[] { "bert_12_768_12", "bert_24_1024_16", "minilm", "minilm_encoder", "minilm_meanpool", "minilm_regression" })
        {
            Assert.Contains(name, ex.Message, StringComparison.Ordinal);
        }

        Assert.Equal(6, ModelZoo.Names.Count);
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

    [Fact]
    public void ReinitializeDrawsThePoolerAndTheTopLayersAfreshAndKeepsTheRest()
    {
        using var model = ModelZoo.GetModel("minilm", pretrained: true);
        var before = model.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var fresh = ModelZoo.Reinitialize(model, layers: 1, pooler: true);

        var expected = before.Keys.Where(n => n.StartsWith("pooler.", StringComparison.Ordinal) || n.StartsWith("encoder.layer.5.", StringComparison.Ordinal)).ToHashSet();
        Assert.Equal(expected.Order(StringComparer.Ordinal), fresh.Order(StringComparer.Ordinal));
        Assert.Contains("encoder.layer.5.output.LayerNorm.weight", expected);
        foreach (var (name, parameter) in model.Module.named_parameters())
        {
            if (!expected.Contains(name))
            {
                Assert.True(parameter.eq(before[name]).all().item<bool>(), $"{name} changed");
                continue;
            }

            Assert.True(parameter.requires_grad, name);
            var init = ((IGraphModule)model.Module).ParameterInitializers[name];
            switch (init)
            {
                case ParameterInit.Ones:
                    Assert.True(parameter.eq(1).all().item<bool>(), name);
                    break;
                case ParameterInit.Zeros:
                    Assert.True(parameter.eq(0).all().item<bool>(), name);
                    break;
                default:
                    Assert.Equal(ParameterInit.Normal, init);
                    Assert.False(parameter.eq(before[name]).all().item<bool>(), $"{name} kept its pretrained value");
                    Assert.InRange(parameter.std().item<float>(), 0.019, 0.021);
                    Assert.InRange(parameter.mean().item<float>(), -0.001, 0.001);
                    break;
            }
        }
    }

    [Fact]
    public void ReinitializeRejectsMoreLayersThanTheModelHas()
    {
        using var model = ModelZoo.GetModel("minilm");
        var ex = Assert.Throws<ArgumentException>(() => ModelZoo.Reinitialize(model, layers: 7, pooler: false));
        Assert.Contains("'minilm' has 6 encoder layers; cannot re-initialise the top 7", ex.Message, StringComparison.Ordinal);
        Assert.Empty(ModelZoo.Reinitialize(model, layers: 0, pooler: false));
    }

    [Fact]
    public void MeanPoolClassifierPoolsTheMeanOfTheValidTokensOnly()
    {
        // Reference: the pretrained encoder's token states, averaged over each row's valid length by hand, through the
        // classifier's own pooler and head. Padding tokens carry values (they attend), so including them would show.
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var classifier = ModelZoo.GetModel("minilm_meanpool", pretrained: true);
        using var encoder = ModelZoo.GetModel("minilm_encoder", pretrained: true);
        classifier.Module.eval();
        encoder.Module.eval();
        manual_seed(5);
        var ids = randint(1000, 30000, new long[] { 32, 32 });
        var types = cat(new[] { zeros(32, 16, dtype: ScalarType.Int64), ones(32, 16, dtype: ScalarType.Int64) }, 1);
        var lengths = randint(3, 33, new long[] { 32 });

        var p = classifier.Module.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        p["classifier.weight"].normal_(0, 1); // the fresh head's 0.02 scale would make every logit small
        var logits = ((nn.Module<Tensor, Tensor, Tensor, Tensor>)classifier.Module).call(ids, types, lengths);
        var (sequence, _) = ((MiniLmEncoderModule)encoder.Module).forward(ids, types, lengths);
        var valid = arange(32).unsqueeze(0).lt(lengths.unsqueeze(1)).to(ScalarType.Float32).unsqueeze(-1);
        var mean = (sequence * valid).sum(1) / valid.sum(1);
        var pooled = nn.functional.linear(mean, p["pooler.dense.weight"], p["pooler.dense.bias"]).tanh();
        var expected = nn.functional.linear(pooled, p["classifier.weight"], p["classifier.bias"]);

        var diff = (logits - expected).abs().max().item<float>();
        Assert.True(diff <= 1e-4f, $"mean-pooled logits differ from the hand-pooled reference by {diff:E2}");
        var firstToken = nn.functional.linear(nn.functional.linear(sequence[.., 0], p["pooler.dense.weight"], p["pooler.dense.bias"]).tanh(), p["classifier.weight"], p["classifier.bias"]);
        Assert.True((logits - firstToken).abs().max().item<float>() > 0.1f, "the logits equal first-token pooling");
    }
}
