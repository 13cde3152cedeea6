using System.Text.RegularExpressions;
using GraphCompiler.ModelDefs;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime.Weights;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Weights;

/// <summary>GluonNLP checkpoints (.params with GluonNLP's parameter names) load into the HF-named models.</summary>
public sealed class GluonNlpMappingTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Our (HF-style) name → GluonNLP's, written by hand from GluonNLP's BERTModel/BERTClassifier.</summary>
    private static string ToGluonNlp(string name)
    {
        (string Pattern, string Replacement)[] rules =
        {
            (@"^embeddings\.word_embeddings\.weight$", "word_embed.0.weight"),
            (@"^embeddings\.token_type_embeddings\.weight$", "token_type_embed.0.weight"),
            (@"^embeddings\.position_embeddings\.weight$", "encoder.position_weight"),
            (@"^embeddings\.LayerNorm\.weight$", "encoder.layer_norm.gamma"),
            (@"^embeddings\.LayerNorm\.bias$", "encoder.layer_norm.beta"),
            (@"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)$", "encoder.transformer_cells.$1.attention_cell.proj_$2.$3"),
            (@"^encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$", "encoder.transformer_cells.$1.proj.$2"),
            (@"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.weight$", "encoder.transformer_cells.$1.layer_norm.gamma"),
            (@"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.bias$", "encoder.transformer_cells.$1.layer_norm.beta"),
            (@"^encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)$", "encoder.transformer_cells.$1.ffn.ffn_1.$2"),
            (@"^encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)$", "encoder.transformer_cells.$1.ffn.ffn_2.$2"),
            (@"^encoder\.layer\.(\d+)\.output\.LayerNorm\.weight$", "encoder.transformer_cells.$1.ffn.layer_norm.gamma"),
            (@"^encoder\.layer\.(\d+)\.output\.LayerNorm\.bias$", "encoder.transformer_cells.$1.ffn.layer_norm.beta"),
            (@"^pooler\.dense\.(weight|bias)$", "pooler.$1"),
            (@"^classifier\.(weight|bias)$", "classifier.1.$1"),
        };
        foreach (var (pattern, replacement) in rules)
        {
            if (Regex.IsMatch(name, pattern))
            {
                return Regex.Replace(name, pattern, replacement);
            }
        }

        throw new InvalidOperationException("no GluonNLP name for " + name);
    }

    private static MiniLmClassifierModule Source()
    {
        random.manual_seed(31);
        var source = new MiniLmClassifierModule();
        using (no_grad())
        {
            foreach (var (_, p) in source.named_parameters())
            {
                p.add_(randn_like(p) * 0.05);
            }
        }

        return source;
    }

    [Fact]
    public void BertClassifierParamsLoadThroughTheZooWithIdenticalOutputs()
    {
        using var scope = NewDisposeScope();
        using var source = Source();
        // BERTClassifier.save_parameters: the encoder under "bert.", the head as classifier.1 (after the Dropout).
        var gluon = WeightLoader.CheckpointTensors(source).Select(kv => KeyValuePair.Create(
            kv.Key.StartsWith("classifier.", StringComparison.Ordinal) ? ToGluonNlp(kv.Key) : "bert." + ToGluonNlp(kv.Key), kv.Value)).ToList();
        Assert.Contains(gluon, kv => kv.Key == "bert.encoder.transformer_cells.5.attention_cell.proj_value.weight");
        var path = _dir.File("bert_classifier.params");
        MxNetParams.Write(path, gluon);

        random.manual_seed(32);
        using var zoo = ModelZoo.GetModel("minilm", pretrained: true, weights: path);
        Assert.Equal(gluon.Count, zoo.Load!.Loaded.Count);
        Assert.Empty(zoo.Load.LeftInitialised);
        Assert.Empty(zoo.Load.Ignored);

        source.eval();
        zoo.Module.eval();
        var (ids, types, lengths) = RoundTripTests.Inputs(32, 64, seed: 5);
        using (no_grad())
        {
            var expected = source.forward(ids, types, lengths);
            var actual = ((MiniLmClassifierModule)zoo.Module).forward(ids, types, lengths);
            Assert.True(RoundTripTests.Same(expected, actual), $"outputs differ by {(expected - actual).abs().max().item<float>()}");
        }
    }

    [Fact]
    public void PretrainedBertModelParamsLoadWithTheirPreTrainingHeadsIgnored()
    {
        using var scope = NewDisposeScope();
        using var source = Source();
        // bert_12_768_12 as pre-trained: no "bert." prefix, the MLM decoder and the next-sentence classifier included.
        var gluon = WeightLoader.CheckpointTensors(source)
            .Where(kv => !kv.Key.StartsWith("classifier.", StringComparison.Ordinal))
            .Select(kv => KeyValuePair.Create(ToGluonNlp(kv.Key), kv.Value))
            .Concat(new[]
            {
                KeyValuePair.Create("decoder.0.weight", randn(384, 384)),
                KeyValuePair.Create("decoder.0.bias", randn(384)),
                KeyValuePair.Create("decoder.2.gamma", ones(384)),
                KeyValuePair.Create("decoder.2.beta", zeros(384)),
                KeyValuePair.Create("decoder.3.bias", zeros(30522)),
                KeyValuePair.Create("classifier.weight", randn(2, 384)),
                KeyValuePair.Create("classifier.bias", zeros(2)),
            }).ToList();
        var path = _dir.File("bert_pretrained.params");
        MxNetParams.Write(path, gluon);

        random.manual_seed(33);
        using var zoo = ModelZoo.GetModel("minilm", pretrained: true, weights: path);
        Assert.Equal(new[] { "classifier.bias", "classifier.weight" }, zoo.Load!.LeftInitialised);
        Assert.Equal(new[] { "classifier.bias", "classifier.weight", "decoder.0.bias", "decoder.0.weight", "decoder.2.beta", "decoder.2.gamma", "decoder.3.bias" }, zoo.Load.Ignored);
        var loaded = zoo.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in source.named_parameters().Where(p => !p.name.StartsWith("classifier.", StringComparison.Ordinal)))
        {
            Assert.True(RoundTripTests.Same(p, loaded[name]), $"{name} differs");
        }

        Assert.False(RoundTripTests.Same(source.get_parameter("classifier.weight")!, loaded["classifier.weight"]), "the NSP classifier must not become the task head");
    }

    [Theory]
    [InlineData("word_embed.0.weight", "embeddings.word_embeddings.weight")]
    [InlineData("bert.word_embed.0.weight", "embeddings.word_embeddings.weight")]
    [InlineData("token_type_embed.0.weight", "embeddings.token_type_embeddings.weight")]
    [InlineData("encoder.position_weight", "embeddings.position_embeddings.weight")]
    [InlineData("encoder.layer_norm.gamma", "embeddings.LayerNorm.weight")]
    [InlineData("encoder.layer_norm.beta", "embeddings.LayerNorm.bias")]
    [InlineData("encoder.transformer_cells.0.attention_cell.proj_query.weight", "encoder.layer.0.attention.self.query.weight")]
    [InlineData("encoder.transformer_cells.11.attention_cell.proj_key.bias", "encoder.layer.11.attention.self.key.bias")]
    [InlineData("bert.encoder.transformer_cells.23.attention_cell.proj_value.weight", "encoder.layer.23.attention.self.value.weight")]
    [InlineData("encoder.transformer_cells.3.proj.weight", "encoder.layer.3.attention.output.dense.weight")]
    [InlineData("encoder.transformer_cells.3.layer_norm.gamma", "encoder.layer.3.attention.output.LayerNorm.weight")]
    [InlineData("encoder.transformer_cells.3.layer_norm.beta", "encoder.layer.3.attention.output.LayerNorm.bias")]
    [InlineData("encoder.transformer_cells.4.ffn.ffn_1.weight", "encoder.layer.4.intermediate.dense.weight")]
    [InlineData("encoder.transformer_cells.4.ffn.ffn_2.bias", "encoder.layer.4.output.dense.bias")]
    [InlineData("encoder.transformer_cells.4.ffn.layer_norm.gamma", "encoder.layer.4.output.LayerNorm.weight")]
    [InlineData("encoder.transformer_cells.4.ffn.layer_norm.beta", "encoder.layer.4.output.LayerNorm.bias")]
    [InlineData("pooler.weight", "pooler.dense.weight")]
    [InlineData("bert.pooler.bias", "pooler.dense.bias")]
    [InlineData("classifier.1.weight", "classifier.weight")]
    [InlineData("classifier.1.bias", "classifier.bias")]
    public void FromGluonNlp_MapsKnownNames(string gluon, string expected) => Assert.Equal(expected, CheckpointNames.FromGluonNlp(gluon));

    [Theory]
    [InlineData("decoder.3.weight")] // MLM head
    [InlineData("classifier.weight")] // next-sentence head of the pre-trained model
    [InlineData("encoder.transformer_cells.x.proj.weight")]
    [InlineData("encoder.transformer_cells.0.proj.gamma")]
    [InlineData("word_embed.0.weight.extra")]
    [InlineData("")]
    public void FromGluonNlp_ReturnsNullForHeadsAndUnknownNames(string gluon) => Assert.Null(CheckpointNames.FromGluonNlp(gluon));

    [Theory]
    [InlineData("bert.encoder.layer.0.attention.self.query.weight", "encoder.layer.0.attention.self.query.weight")]
    [InlineData("classifier.weight", "classifier.weight")]
    [InlineData("bertx.pooler.dense.bias", "bertx.pooler.dense.bias")]
    public void FromHuggingFace_StripsTheBertPrefix(string hf, string expected) => Assert.Equal(expected, CheckpointNames.FromHuggingFace(hf));
}
