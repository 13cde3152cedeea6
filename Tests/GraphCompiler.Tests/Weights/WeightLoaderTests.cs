using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime.Weights;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Weights;

/// <summary>The checked loader: everything is verified by name and shape before anything is copied.</summary>
public sealed class WeightLoaderTests : IDisposable
{
    private readonly MiniLmClassifierModule _source;
    private readonly MiniLmClassifierModule _target;

    public WeightLoaderTests()
    {
        random.manual_seed(21);
        _source = new MiniLmClassifierModule();
        random.manual_seed(22);
        _target = new MiniLmClassifierModule();
    }

    public void Dispose()
    {
        _source.Dispose();
        _target.Dispose();
    }

    /// <summary>The source module's checkpoint as an owned set (copies), optionally edited.</summary>
    private TensorSet Checkpoint(Func<string, bool>? keep = null, Func<string, string>? rename = null)
    {
        var set = new TensorSet("memory checkpoint");
        foreach (var (name, t) in WeightLoader.CheckpointTensors(_source))
        {
            if (keep is null || keep(name))
            {
                set.Add(rename is null ? name : rename(name), t.clone());
            }

            t.Dispose();
        }

        return set;
    }

    private static Tensor P(nn.Module module, string name) => module.get_parameter(name) ?? throw new InvalidOperationException("no parameter " + name);

    private Dictionary<string, Tensor> Snapshot() =>
        _target.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone(), StringComparer.Ordinal);

    private void AssertUnchanged(Dictionary<string, Tensor> before)
    {
        foreach (var (name, p) in _target.named_parameters())
        {
            Assert.True(RoundTripTests.Same(before[name], p), $"{name} changed although the load was refused");
            before[name].Dispose();
        }
    }

    [Fact]
    public void MissingUnexpectedAndMisshapenAreReportedByNameAndNothingIsCopied()
    {
        using var set = Checkpoint(keep: n => n != "pooler.dense.bias" && n != "encoder.layer.4.attention.self.value.bias");
        // Wrong shapes: a plain parameter and one part of a packed QKV weight.
        var replaced = new[] { "embeddings.LayerNorm.weight", "encoder.layer.2.attention.self.key.weight" };
        var edited = new TensorSet(set.Source);
        foreach (var (name, t) in set)
        {
            edited.Add(name, replaced.Contains(name) ? zeros(t.shape[0], t.shape[^1] - 1) : t.clone());
        }

        edited.Add("bogus.weight", ones(3));
        var before = Snapshot();
        using (edited)
        {
            var ex = Assert.Throws<WeightLoadException>(() => WeightLoader.Load(_target, edited));
            Assert.Equal(new[] { "encoder.layer.4.attention.self.value.bias", "pooler.dense.bias" }, ex.Missing);
            Assert.Equal(new[] { "bogus.weight" }, ex.Unexpected);
            Assert.Equal(2, ex.Mismatched.Count);
            Assert.StartsWith("embeddings.LayerNorm.weight: checkpoint [384, 383], model [384]", ex.Mismatched[0], StringComparison.Ordinal);
            Assert.StartsWith("encoder.layer.2.attention.self.key.weight: checkpoint [384, 383], model [384, 384]", ex.Mismatched[1], StringComparison.Ordinal);
            Assert.Contains("memory checkpoint", ex.Message, StringComparison.Ordinal);
            Assert.Contains("nothing was loaded", ex.Message, StringComparison.Ordinal);
            Assert.Contains("pooler.dense.bias", ex.Message, StringComparison.Ordinal);
            Assert.Contains("bogus.weight", ex.Message, StringComparison.Ordinal);
        }

        AssertUnchanged(before);
    }

    [Fact]
    public void NonFloatingTensorAndDuplicateTargetAreMismatches()
    {
        using var set = Checkpoint(rename: n => n == "pooler.dense.bias" ? "bert.pooler.dense.bias" : n);
        set.Add("pooler.dense.bias", ones(384)); // after renaming "bert." away, the same target twice
        var edited = new TensorSet("edited");
        foreach (var (name, t) in set)
        {
            edited.Add(name, name == "embeddings.token_type_embeddings.weight" ? t.to(ScalarType.Int64) : t.clone());
        }

        var before = Snapshot();
        using (edited)
        {
            var ex = Assert.Throws<WeightLoadException>(() => WeightLoader.Load(_target, edited, new LoadOptions { Rename = CheckpointNames.FromHuggingFace }));
            Assert.Empty(ex.Missing);
            Assert.Empty(ex.Unexpected);
            Assert.Contains(ex.Mismatched, m => m.StartsWith("embeddings.token_type_embeddings.weight", StringComparison.Ordinal) && m.Contains("not floating point", StringComparison.Ordinal));
            Assert.Contains(ex.Mismatched, m => m.StartsWith("pooler.dense.bias (given twice", StringComparison.Ordinal));
        }

        AssertUnchanged(before);
    }

    [Fact]
    public void AllowMissingLeavesTheClassifierInitialisedAndReportsIt()
    {
        using var set = Checkpoint(keep: n => !n.StartsWith("classifier.", StringComparison.Ordinal));
        using var classifierBefore = P(_target, "classifier.weight").detach().clone();
        var strict = Assert.Throws<WeightLoadException>(() => WeightLoader.Load(_target, set));
        Assert.Equal(new[] { "classifier.bias", "classifier.weight" }, strict.Missing);

        var report = WeightLoader.Load(_target, set, new LoadOptions { AllowMissing = n => n.StartsWith("classifier.", StringComparison.Ordinal) });
        Assert.Equal(new[] { "classifier.bias", "classifier.weight" }, report.LeftInitialised);
        Assert.Equal(set.Count, report.Loaded.Count);
        Assert.Contains("freshly initialised: classifier.bias, classifier.weight", report.ToString(), StringComparison.Ordinal);
        Assert.True(RoundTripTests.Same(classifierBefore, P(_target, "classifier.weight")));
        Assert.True(RoundTripTests.Same(P(_source, "pooler.dense.weight"), P(_target, "pooler.dense.weight")));
    }

    [Fact]
    public void IgnoreUnexpectedDropsOnlyWhatItNames()
    {
        using var set = Checkpoint();
        set.Add("embeddings.position_ids", arange(512L).unsqueeze(0));
        set.Add("cls.predictions.bias", zeros(30522));
        var strict = Assert.Throws<WeightLoadException>(() => WeightLoader.Load(_target, set));
        Assert.Equal(new[] { "cls.predictions.bias", "embeddings.position_ids" }, strict.Unexpected);

        var partial = Assert.Throws<WeightLoadException>(() => WeightLoader.Load(_target, set, new LoadOptions { IgnoreUnexpected = n => n.EndsWith("position_ids", StringComparison.Ordinal) }));
        Assert.Equal(new[] { "cls.predictions.bias" }, partial.Unexpected);

        var report = WeightLoader.Load(_target, set, new LoadOptions { IgnoreUnexpected = n => n.EndsWith("position_ids", StringComparison.Ordinal) || n.StartsWith("cls.", StringComparison.Ordinal) });
        Assert.Equal(new[] { "cls.predictions.bias", "embeddings.position_ids" }, report.Ignored);
        Assert.Empty(report.LeftInitialised);
    }

    [Fact]
    public void SeparateQueryKeyValueFillTheRightRowsOfThePackedParameter()
    {
        Assert.Contains(MiniLmClassifierModule.PackedParameters, p => p.Name == "encoder.layer.1.attention.self.query_key_value.weight");
        using var q = full(new long[] { 384, 384 }, 1f);
        using var k = full(new long[] { 384, 384 }, 2f);
        using var v = arange(384 * 384, dtype: ScalarType.Float32).reshape(384, 384);
        using var parts = new TensorSet("qkv");
        foreach (var (name, shape) in WeightLoader.CheckpointShapes(_target))
        {
            parts.Add(name, name switch
            {
                "encoder.layer.1.attention.self.query.weight" => q.clone(),
                "encoder.layer.1.attention.self.key.weight" => k.clone(),
                "encoder.layer.1.attention.self.value.weight" => v.clone(),
                "encoder.layer.1.attention.self.key.bias" => full(new long[] { 384 }, 7f),
                _ => zeros(shape),
            });
        }

        WeightLoader.Load(_target, parts);
        var packed = P(_target, "encoder.layer.1.attention.self.query_key_value.weight");
        Assert.Equal(new long[] { 1152, 384 }, packed.shape);
        Assert.True(RoundTripTests.Same(q, packed.narrow(0, 0, 384)));
        Assert.True(RoundTripTests.Same(k, packed.narrow(0, 384, 384)));
        Assert.True(RoundTripTests.Same(v, packed.narrow(0, 768, 384)));
        var bias = P(_target, "encoder.layer.1.attention.self.query_key_value.bias");
        Assert.Equal(new[] { 0f, 7f, 0f }, new[] { bias[0].item<float>(), bias[384].item<float>(), bias[768].item<float>() });
        Assert.Equal(7f * 384, bias.sum().item<float>());
        // Other layers' packed parameters are untouched by layer 1's parts (all zeros here).
        Assert.Equal(0f, P(_target, "encoder.layer.0.attention.self.query_key_value.weight").abs().sum().item<float>());

        // And CheckpointTensors splits the packed parameter back into the same parts.
        var back = WeightLoader.CheckpointTensors(_target).ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.True(RoundTripTests.Same(v, back["encoder.layer.1.attention.self.value.weight"]));
        Assert.DoesNotContain(back.Keys, n => n.Contains("query_key_value", StringComparison.Ordinal));
    }
}
