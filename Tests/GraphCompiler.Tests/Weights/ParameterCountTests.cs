using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime.Weights;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Weights;

/// <summary>The declared models have exactly the published parameter counts (encoder + pooler, no task head).</summary>
public sealed class ParameterCountTests
{
    private static long Count(nn.Module module) =>
        WeightLoader.CheckpointShapes(module)
            .Where(kv => !kv.Key.StartsWith("classifier.", StringComparison.Ordinal))
            .Sum(kv => kv.Value.Aggregate(1L, (a, b) => a * b));

    [Fact]
    public void MiniLmEncoderHasTheAllMiniLmL6V2Count()
    {
        using var model = new MiniLmEncoderModule(device("meta"));
        Assert.Equal(22_713_216L, Count(model));
    }

    [Fact]
    public void Bert12HasTheBertBaseCount()
    {
        using var model = new Bert12ClassifierModule(device("meta"));
        Assert.Equal(109_482_240L, Count(model));
        Assert.Equal(new long[] { 2, 768 }, WeightLoader.CheckpointShapes(model)["classifier.weight"]);
    }

    [Fact]
    public void Bert24HasTheBertLargeCount()
    {
        using var model = new Bert24ClassifierModule(device("meta"));
        Assert.Equal(335_141_888L, Count(model));
        Assert.Equal(24 * 16 + 5 + 2, WeightLoader.CheckpointShapes(model).Count(kv => !kv.Key.StartsWith("classifier.", StringComparison.Ordinal)));
    }
}
