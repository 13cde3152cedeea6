using GraphCompiler.Runtime.Quantization;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Quantization;

public sealed class CollectorTests
{
    private const string Slot = "encoder.layer.0.attention.self.query";
    private readonly ITestOutputHelper _output;

    public CollectorTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void MinMaxIsTheExactMaxAbsOverAllBatches()
    {
        using var scope = NewDisposeScope();
        var seeded = new Seeded(41);
        var collector = new MinMaxCollector();
        var batches = new[] { seeded.Uniform(-3, 2, 64, 16), seeded.Uniform(-1, 2.5, 64, 16), seeded.Uniform(-2, 1, 8) };
        foreach (var b in batches)
        {
            collector.Observe(Slot, ActivationKinds.Other, b);
        }

        var expected = batches.Max(b => b.abs().max().item<float>());
        Assert.Equal(expected, collector.Thresholds()[Slot]);
        Assert.Equal(expected / 127f, collector.Scales()[Slot]);
    }

    [Fact]
    public void AnAllZeroSlotGetsScaleOne()
    {
        using var scope = NewDisposeScope();
        foreach (var mode in Enum.GetValues<CalibrationMode>())
        {
            var collector = CalibrationCollectors.Create(mode);
            collector.Observe("zeros", ActivationKinds.Other, zeros(4, 4));
            Assert.Equal(1f, collector.Scales()["zeros"]);
        }
    }

    [Fact]
    public void CustomizeClipsLongTailedKindsOnly()
    {
        using var scope = NewDisposeScope();
        var collector = new CustomizeCollector();
        collector.Observe("gelu", ActivationKinds.GeluOutput, tensor(new[] { -0.17f, 3f, 30f }));
        collector.Observe("norm", ActivationKinds.LayerNormOutput, tensor(new[] { -60f, 2f }));
        collector.Observe("norm", ActivationKinds.LayerNormOutput, tensor(new[] { -1f, 4f }));
        collector.Observe("attention", ActivationKinds.AttentionOutput, tensor(new[] { -30f, 12f }));
        var t = collector.Thresholds();
        Assert.Equal(10f, t["gelu"]);
        Assert.Equal(50f, t["norm"]);
        Assert.Equal(30f, t["attention"]);
        Assert.Equal(10f / 127f, collector.Scales()["gelu"]);

        var custom = new CustomizeCollector(new Dictionary<string, (float Min, float Max)>
        {
            [ActivationKinds.GeluOutput] = (-1f, 6f),
            [ActivationKinds.AttentionOutput] = (-8f, 8f),
        });
        custom.Observe("gelu", ActivationKinds.GeluOutput, tensor(new[] { -0.17f, 30f }));
        custom.Observe("attention", ActivationKinds.AttentionOutput, tensor(new[] { -30f, 12f }));
        custom.Observe("norm", ActivationKinds.LayerNormOutput, tensor(new[] { -60f, 2f }));
        Assert.Equal(new Dictionary<string, float> { ["attention"] = 8f, ["gelu"] = 6f, ["norm"] = 60f }, custom.Thresholds());
        Assert.Throws<ArgumentException>(() => new CustomizeCollector(5f, -5f, ActivationKinds.GeluOutput));
    }

    /// <summary>|N(0, 1)| exceeds 3.89 with probability 1e-4; 20 outliers at ±50 among 10⁶ values shift the 99.99th
    /// percentile only to ≈ 3.94.</summary>
    [Fact]
    public void PercentileClipsOutliersOfAGaussian()
    {
        using var scope = NewDisposeScope();
        var collector = new PercentileCollector();
        foreach (var batch in GaussianWithOutliers(42))
        {
            collector.Observe(Slot, ActivationKinds.Other, batch);
        }

        var threshold = collector.Thresholds()[Slot];
        _output.WriteLine($"percentile 99.99 threshold {threshold}");
        Assert.InRange(threshold, 3.80f, 4.10f);

        // The naive threshold is the outliers' 50.
        var naive = new MinMaxCollector();
        foreach (var batch in GaussianWithOutliers(42))
        {
            naive.Observe(Slot, ActivationKinds.Other, batch);
        }

        Assert.Equal(50f, naive.Thresholds()[Slot]);
    }

    [Fact]
    public void EntropyClipsOutliersOfAGaussian()
    {
        using var scope = NewDisposeScope();
        var collector = new EntropyCollector();
        foreach (var batch in GaussianWithOutliers(43))
        {
            collector.Observe(Slot, ActivationKinds.Other, batch);
        }

        var threshold = collector.Thresholds()[Slot];
        _output.WriteLine($"entropy threshold {threshold}");
        Assert.InRange(threshold, 3.5f, 5.5f);
    }

    [Fact]
    public void EntropyKeepsTheWholeRangeOfAUniform()
    {
        using var scope = NewDisposeScope();
        var seeded = new Seeded(44);
        var collector = new EntropyCollector();
        for (var i = 0; i < 4; i++)
        {
            collector.Observe(Slot, ActivationKinds.Other, seeded.Uniform(-2, 2, 50_000));
        }

        var threshold = collector.Thresholds()[Slot];
        _output.WriteLine($"entropy threshold (uniform) {threshold}");
        Assert.InRange(threshold, 1.9f, 2f);
    }

    [Fact]
    public void EntropyPicksTheExactEdgeOnAHandMadeHistogram()
    {
        // Mass only in the first 128 of 2048 bins: clipping at edge 128 loses nothing (one bin per level).
        var counts = new double[2048];
        for (var i = 0; i < 128; i++)
        {
            counts[i] = 1 + (i % 7);
        }

        Assert.Equal(128, EntropyCollector.BestEdge(counts, 128));

        // A lone far bin beyond a dense block: clipping it costs less than spreading 128 levels over 2048 bins.
        counts[2047] = 1;
        Assert.Equal(128, EntropyCollector.BestEdge(counts, 128));

        // Uniform over every bin: nothing may be clipped.
        Assert.Equal(2048, EntropyCollector.BestEdge(Enumerable.Repeat(5.0, 2048).ToArray(), 128));
    }

    /// <summary>The first batch sets the range at 1; later ones reach 4, so the range doubles twice and old bins merge
    /// four to one. The merged histogram is exactly the single-batch one, so the thresholds agree.</summary>
    [Theory]
    [InlineData(CalibrationMode.Percentile)]
    [InlineData(CalibrationMode.Entropy)]
    public void RebinningAcrossBatchesMatchesOneBatch(CalibrationMode mode)
    {
        using var scope = NewDisposeScope();
        var seeded = new Seeded(45);
        var batches = new[]
        {
            cat(new[] { seeded.Normal(20_000).mul_(0.2).clamp_(-1, 1), tensor(new[] { 1f }) }),
            cat(new[] { seeded.Normal(20_000).mul_(0.4), tensor(new[] { -2f }) }),
            cat(new[] { seeded.Normal(20_000).mul_(0.6), tensor(new[] { 4f }) }),
        };
        var growing = CalibrationCollectors.Create(mode);
        foreach (var b in batches)
        {
            growing.Observe(Slot, ActivationKinds.Other, b);
        }

        var single = CalibrationCollectors.Create(mode);
        single.Observe(Slot, ActivationKinds.Other, cat(batches));
        var (a, e) = (growing.Scales()[Slot] * 127, single.Scales()[Slot] * 127);
        var bin = 4.0 / (mode == CalibrationMode.Entropy ? EntropyCollector.DefaultBins : PercentileCollector.DefaultBins);
        _output.WriteLine($"{mode}: growing {a}, single {e}, bin {bin}");
        Assert.InRange(Math.Abs(a - e), 0, bin);
    }

    /// <summary>With growth by a factor that is not a power of two, the final bins are coarser than the single batch's
    /// (range 4 instead of 3); the percentile still lands within one of those bins.</summary>
    [Fact]
    public void PercentileWithANonPowerOfTwoGrowthStaysWithinOneBin()
    {
        using var scope = NewDisposeScope();
        var seeded = new Seeded(46);
        var batches = new[]
        {
            cat(new[] { seeded.Uniform(-1, 1, 30_000), tensor(new[] { 1f }) }),
            cat(new[] { seeded.Uniform(-3, 3, 30_000), tensor(new[] { 3f }) }),
        };
        var growing = new PercentileCollector(99);
        foreach (var b in batches)
        {
            growing.Observe(Slot, ActivationKinds.Other, b);
        }

        var single = new PercentileCollector(99);
        single.Observe(Slot, ActivationKinds.Other, cat(batches));
        var (a, e) = (growing.Thresholds()[Slot], single.Thresholds()[Slot]);
        _output.WriteLine($"growing {a}, single {e}");
        Assert.InRange(Math.Abs(a - e), 0, 4.0 / PercentileCollector.DefaultBins);
    }

    [Fact]
    public void HistogramCountsStayExactThroughMerges()
    {
        using var scope = NewDisposeScope();
        var histogram = new AbsHistogram(8);
        histogram.Add(zeros(3), 0);                                  // zeros before any range: kept for bin 0
        histogram.Add(tensor(new[] { 0.1f, -0.6f, 1f }), 1);          // range 1, bins of 1/8
        histogram.Add(tensor(new[] { 2.9f, -0.2f }), 2.9);            // range 4: bins of 1/2
        Assert.Equal(4, histogram.Range);
        Assert.Equal(8, histogram.Total);
        Assert.Equal(new double[] { 5, 2, 0, 0, 0, 1, 0, 0 }, histogram.Counts.ToArray());

        // Growth by far more than the bin count (range 4 → 4·2¹⁰⁰): every earlier value lands in bin 0.
        histogram.Add(tensor(new[] { 4e30f }), 4e30);
        Assert.True(histogram.Range >= 4e30 && histogram.Range < 8e30, $"range {histogram.Range}");
        Assert.Equal(new double[] { 8, 0, 0, 0, 0, 0, 1, 0 }, histogram.Counts.ToArray()); // 4e30 · 8 / (4 · 2¹⁰⁰) = 6.3
    }

    [Fact]
    public void NonFiniteActivationsNameTheSlot()
    {
        using var scope = NewDisposeScope();
        foreach (var mode in Enum.GetValues<CalibrationMode>())
        {
            var e = Assert.Throws<ArgumentException>(() => CalibrationCollectors.Create(mode).Observe(Slot, ActivationKinds.Other, tensor(new[] { 1f, float.PositiveInfinity })));
            Assert.Contains(Slot, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void FactoryAndModeNames()
    {
        Assert.IsType<MinMaxCollector>(CalibrationCollectors.Create(CalibrationMode.Naive));
        Assert.IsType<PercentileCollector>(CalibrationCollectors.Create(CalibrationMode.Percentile));
        Assert.IsType<EntropyCollector>(CalibrationCollectors.Create(CalibrationMode.Entropy));
        Assert.IsType<CustomizeCollector>(CalibrationCollectors.Create(CalibrationMode.Customize));
        Assert.Equal(CalibrationMode.Entropy, CalibrationCollectors.ParseMode("entropy"));
        var e = Assert.Throws<ArgumentException>(() => CalibrationCollectors.ParseMode("kl"));
        Assert.Contains("naive, percentile, entropy, customize", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new PercentileCollector(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PercentileCollector(100.5));
    }

    /// <summary>10⁶ values of N(0, 1) in 4 batches, the last carrying 10 outliers at +50 and 10 at −50.</summary>
    private static IEnumerable<Tensor> GaussianWithOutliers(ulong seed)
    {
        var seeded = new Seeded(seed);
        for (var i = 0; i < 3; i++)
        {
            yield return seeded.Normal(250_000);
        }

        yield return cat(new[] { seeded.Normal(249_980), full(10, 50f), full(10, -50f) });
    }
}
