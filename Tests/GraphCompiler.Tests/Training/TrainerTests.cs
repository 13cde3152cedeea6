using System.Globalization;
using System.Text.Json;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.Reporting;
using GraphCompiler.Runtime.Training;
using GraphCompiler.Tests.Declarations;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Training;

/// <summary>The trainer on the tiny declared classifier (generated backward) and a synthetic learnable task: the first
/// sentence is all token 4 (label 1) or all token 5 (label 0), the second random tokens.</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
public sealed class TrainerTests : IDisposable
{
    private const int Cls = 1, Sep = 2, Pad = 0;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "gc-trainer-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public void LossFallsAndDevAccuracyBeatsTheMajorityClass()
    {
        var train = Examples(96, seed: 1);
        var dev = Examples(32, seed: 2);
        using var model = NewModel(3);
        var log = new StringWriter();
        using var trainer = new Trainer(model, Options() with { Epochs = 6, LearningRate = 3e-3, Log = log, Progress = ProgressMode.Lines });
        var result = trainer.Fit(Source(train, seed: 5), Source(dev, seed: 0, shuffle: false));

        var epochs = result.History.Epochs;
        Assert.Equal(6, epochs.Count);
        Assert.True(epochs[^1].TrainLoss < 0.6 * epochs[0].TrainLoss, $"train loss {epochs[0].TrainLoss:F4} → {epochs[^1].TrainLoss:F4}");
        var majority = Math.Max(dev.Count(e => e.Label == 1), dev.Count(e => e.Label == 0)) / (double)dev.Count;
        Assert.True(result.BestDev![Metrics.Accuracy] > majority + 0.15, $"dev accuracy {result.BestDev[Metrics.Accuracy]:F3}, majority {majority:F3}");
        Assert.Equal(Metrics.Accuracy, result.BestMetric);
        Assert.Equal(epochs.MaxBy(e => e.Dev[Metrics.Accuracy])!.Epoch, result.BestEpoch);
        Assert.Contains("[Epoch 1 Batch 4/24] loss=", log.ToString());
        Assert.Contains("lr=0.00", log.ToString());
        Assert.True(result.SequencesPerSecond > 0 && result.TrainSequences == 6 * 96);
        Assert.True(result.PeakMemoryBytes > 0);
    }

    [Fact]
    public void WeightDecayIsOffForBiasesAndLayerNorm()
    {
        using var model = NewModel(3);
        var (decayed, plain) = Optimizers.Groups(model);
        Assert.All(plain, n => Assert.True(n.EndsWith(".bias", StringComparison.Ordinal) || n.Contains("LayerNorm", StringComparison.Ordinal), n));
        Assert.All(decayed, n => Assert.False(n.EndsWith(".bias", StringComparison.Ordinal) || n.Contains("LayerNorm", StringComparison.Ordinal), n));
        Assert.Contains("embeddings.LayerNorm.weight", plain);
        Assert.Contains("classifier.bias", plain);
        Assert.Contains("classifier.weight", decayed);
        Assert.Contains("embeddings.word_embeddings.weight", decayed);
        Assert.Equal(model.parameters().Count(), decayed.Count + plain.Count);

        // With zero gradients AdamW's update is the decay alone: decayed weights shrink by (1 − lr·wd), the rest stay.
        using var trainer = new Trainer(model, Options() with { Optimizer = OptimizerKind.AdamW, WeightDecay = 0.5, LearningRate = 0.1 });
        Assert.Equal([0.5, 0.0], Optimizers.GroupWeightDecays(trainer.Optimizer));
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        (model.parameters().Select(p => p.sum() * 0).Aggregate((a, b) => a + b)).backward();
        trainer.Optimizer.step();
        foreach (var (name, p) in model.named_parameters())
        {
            var expected = decayed.Contains(name) ? before[name] * 0.95 : before[name];
            Assert.True(allclose(p.detach(), expected, rtol: 1e-6, atol: 1e-7), name);
        }
    }

    [Fact]
    public void LayerDecayScalesEachLayersFirstAdamStep()
    {
        using var model = NewModel(3, dropout: false);
        var options = Options() with { Optimizer = OptimizerKind.AdamW, LearningRate = 1e-3, LayerDecay = 0.5, Schedule = ScheduleKind.Constant, MaxGradNorm = null, Epochs = 1 };
        var plan = Optimizers.Plan(model, options);
        var names = plan.SelectMany(g => g.Names).ToList();
        Assert.Equal(model.named_parameters().Select(p => p.name).Order(), names.Order());
        var layers = names.Where(n => n.StartsWith("encoder.layer.", StringComparison.Ordinal)).Select(n => int.Parse(n.Split('.')[2], CultureInfo.InvariantCulture) + 1).Max();
        Assert.True(layers >= 1);

        double Expected(string name) =>
            name.StartsWith("encoder.layer.", StringComparison.Ordinal) ? Math.Pow(0.5, layers - int.Parse(name.Split('.')[2], CultureInfo.InvariantCulture))
            : name.StartsWith("embeddings.", StringComparison.Ordinal) ? Math.Pow(0.5, layers + 1)
            : 1.0;
        foreach (var group in plan)
        {
            Assert.All(group.Names, n => Assert.Equal(Expected(n), group.LearningRateScale));
            Assert.All(group.Names, n => Assert.Equal(Optimizers.Decays(n) ? options.WeightDecay : 0, group.WeightDecay));
        }

        Assert.Equal(2, Optimizers.Plan(model, options with { LayerDecay = 1 }).Count);

        // Adam's first step moves every weight with a non-zero gradient by lr·sign(g) (epsilon aside): the size of the
        // step shows each parameter's own rate.
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using var trainer = new Trainer(model, options);
        trainer.Fit(new BatchSource(_ => [Make(Examples(4, seed: 2), [0, 1, 2, 3], 16)], _ => 1));
        foreach (var (name, p) in model.named_parameters())
        {
            var step = (p.detach() - before[name]).abs().max().item<float>();
            Assert.True(Math.Abs(step - (1e-3 * Expected(name))) <= 1e-3 * Expected(name) * 1e-2, $"{name}: largest step {step:E4}, expected {1e-3 * Expected(name):E4}");
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => new Trainer(model, options with { LayerDecay = 0 }));
    }

    [Fact]
    public void ClippingCapsTheGlobalGradientNorm()
    {
        var data = Examples(4, seed: 1);
        double Norm(double? max)
        {
            using var model = NewModel(3);
            using var trainer = new Trainer(model, Options() with { Epochs = 1, MaxGradNorm = max });
            trainer.Fit(Source(data, seed: 0, shuffle: false));
            return Math.Sqrt(model.parameters().Sum(p => p.grad!.square().sum().item<float>()));
        }

        var unclipped = Norm(null);
        Assert.True(unclipped > 0.01, $"unclipped norm {unclipped}");
        Assert.Equal(0.01, Norm(0.01), 5);
        Assert.Equal(unclipped, Norm(1e6), 5);
    }

    [Fact]
    public void AccumulatingTwoHalfBatchesEqualsOneFullBatch()
    {
        var data = Examples(4, seed: 7, maxLength: 8);
        var options = Options() with { Epochs = 1, LearningRate = 1e-4, Epsilon = 1e-6, Schedule = ScheduleKind.Constant, MaxGradNorm = 1.0 };

        using var full = NewModel(11, dropout: false);
        using (var trainer = new Trainer(full, options))
        {
            trainer.Fit(new BatchSource(_ => [Make(data, [0, 1, 2, 3], 8)], _ => 1));
        }

        using var halves = NewModel(11, dropout: false);
        using (var trainer = new Trainer(halves, options with { AccumulationSteps = 2 }))
        {
            // Each half is a padded batch: 2 real rows and 2 filler rows that must not count.
            var result = trainer.Fit(new BatchSource(_ => [Make(data, [0, 1], 8), Make(data, [2, 3], 8)], _ => 2));
            Assert.Equal(1, result.Steps);
        }

        var a = full.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in halves.named_parameters())
        {
            Assert.True((p.grad! - a[name].grad!).abs().max().item<float>() <= 1e-6, $"gradient of {name}");
            Assert.True((p.detach() - a[name].detach()).abs().max().item<float>() <= 1e-6, $"parameter {name}");
        }
    }

    [Fact]
    public void ResumingFromACheckpointGivesTheUninterruptedResult()
    {
        var train = Examples(24, seed: 3);
        var dev = Examples(8, seed: 4);
        var options = Options() with { Epochs = 2, LearningRate = 1e-3, Optimizer = OptimizerKind.AdamW, WeightDecay = 0.01 };

        using var straight = NewModel(5);
        TrainingResult expected;
        using (var trainer = new Trainer(straight, options with { OutputDirectory = Path.Combine(_root, "straight") }))
        {
            expected = trainer.Fit(Source(train, 9), Source(dev, 0, shuffle: false));
        }

        var dir = Path.Combine(_root, "resumed");
        using (var first = NewModel(5))
        using (var trainer = new Trainer(first, options with { OutputDirectory = dir }))
        {
            var partial = trainer.Fit(Source(train, 9), Source(dev, 0, shuffle: false), stopAfterSteps: 9); // mid epoch 2
            Assert.False(partial.Completed);
            Assert.Equal(9, partial.Steps);
        }

        using var resumed = NewModel(99); // different initial weights: everything must come from the checkpoint
        TrainingResult actual;
        using (var trainer = new Trainer(resumed, options with { OutputDirectory = dir }))
        {
            Assert.True(trainer.Resume());
            Assert.Equal(9, trainer.State.Step);
            actual = trainer.Fit(Source(train, 9), Source(dev, 0, shuffle: false));
        }

        Assert.Equal(expected.Steps, actual.Steps);
        var want = straight.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in resumed.named_parameters())
        {
            var diff = (p.detach() - want[name].detach()).abs().max().item<float>();
            Assert.True(diff <= 1e-7, $"{name} differs by {diff:E2} after resuming");
        }

        Assert.Equal(expected.History.Steps.Select(s => s.Loss), actual.History.Steps.Select(s => s.Loss));
        Assert.Equal(expected.BestEpoch, actual.BestEpoch);
        Assert.Equal(expected.BestValue, actual.BestValue);
    }

    [Fact]
    public void NanLossStopsWithAClearMessageAndKeepsTheLastCheckpoint()
    {
        var train = Examples(24, seed: 3);
        var dir = Path.Combine(_root, "nan");
        using var model = NewModel(5);
        var calls = 0;
        Tensor Forward(Batch b)
        {
            var y = model.call(b.TokenIds, b.SegmentIds, b.ValidLength);
            return ++calls == 7 ? y * double.NaN : y; // the 7th batch: epoch 2, step 7
        }

        using var trainer = new Trainer(model, Forward, Options() with { Epochs = 2, LearningRate = 1e-3, OutputDirectory = dir, CheckpointEvery = 4 });
        var error = Assert.Throws<TrainingDivergedException>(() => trainer.Fit(Source(train, 9)));
        Assert.Contains("epoch 2, step 7 (batch 1/6): the loss is NaN", error.Message);
        Assert.Equal(2, error.Epoch);
        Assert.Equal(7, error.Step);
        var store = new CheckpointStore(dir);
        Assert.Equal(store.Latest, error.LastCheckpoint);
        Assert.Contains(error.LastCheckpoint!, error.Message);
        Assert.Equal(6, CheckpointStore.ReadState(error.LastCheckpoint!).Step); // checkpoints at step 4 and at the end of epoch 1 (6)
        using var reloaded = NewModel(99);
        using var check = new Trainer(reloaded, Options());
        CheckpointStore.Load(error.LastCheckpoint!, reloaded, check.Optimizer);
        // The failed step was not applied: the model is still the checkpoint's.
        var saved = reloaded.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.All(model.named_parameters(), p => Assert.True((p.parameter.detach() - saved[p.name].detach()).abs().max().item<float>() == 0, p.name));
        Assert.True(File.Exists(Path.Combine(dir, "curves-steps.csv")));
    }

    [Fact]
    public void CheckpointsAreWrittenAtomically()
    {
        var dir = Path.Combine(_root, "atomic");
        using var model = NewModel(5);
        using var trainer = new Trainer(model, Options() with { Epochs = 1, LearningRate = 1e-3, OutputDirectory = dir, CheckpointEvery = 2 });
        trainer.Fit(Source(Examples(16, seed: 3), 9));
        var store = trainer.Checkpoints!;
        var good = store.Latest!;
        Assert.Equal(CheckpointStore.Keep, Directory.GetDirectories(store.CheckpointsDirectory).Length); // older checkpoints removed, the previous kept
        Assert.Empty(Directory.GetFileSystemEntries(dir, "*.tmp*", SearchOption.AllDirectories));
        var goodBytes = File.ReadAllBytes(Path.Combine(good, CheckpointStore.ModelFile));

        // A write that fails after the files are on disk, before the rename: nothing changes.
        store.BeforeCommit = _ => throw new IOException("disk full (injected)");
        var state = trainer.State with { Step = trainer.State.Step + 1 };
        using (no_grad())
        {
            foreach (var p in model.parameters())
            {
                p.add_(1);
            }
        }

        Assert.Throws<IOException>(() => store.Save(model, trainer.Optimizer, state));
        Assert.Equal(good, store.Latest);
        Assert.Empty(Directory.GetFileSystemEntries(dir, "*.tmp*", SearchOption.AllDirectories));
        Assert.Equal(CheckpointStore.Keep, Directory.GetDirectories(store.CheckpointsDirectory).Length);
        Assert.Equal(goodBytes, File.ReadAllBytes(Path.Combine(good, CheckpointStore.ModelFile)));
        using var reloaded = NewModel(99);
        using var check = new Trainer(reloaded, Options());
        Assert.Equal(trainer.State.Step, CheckpointStore.Load(good, reloaded, check.Optimizer).Step);
    }

    [Fact]
    public void ResumeFallsBackToThePreviousCheckpointWhenTheLatestIsDamaged()
    {
        var dir = Path.Combine(_root, "damaged");
        var options = Options() with { Epochs = 1, LearningRate = 1e-3, OutputDirectory = dir, CheckpointEvery = 2 };
        using (var model = NewModel(5))
        using (var trainer = new Trainer(model, options))
        {
            trainer.Fit(Source(Examples(16, seed: 3), 9)); // 4 steps: checkpoints at steps 2 and 4, then the epoch's end
        }

        var store = new CheckpointStore(dir);
        var latest = store.Latest!;
        Assert.EndsWith("step-000004-e1-b0", latest);
        var previous = Assert.Single(store.ResumeCandidates().Skip(1));
        Assert.EndsWith("step-000004-e0-b4", previous);

        // A truncated model file: found by the manifest, the previous checkpoint used, the damaged one removed.
        var modelFile = Path.Combine(latest, CheckpointStore.ModelFile);
        using (var f = new FileStream(modelFile, FileMode.Open))
        {
            f.SetLength(f.Length / 2);
        }

        using (var model = NewModel(99))
        using (var trainer = new Trainer(model, options))
        {
            Assert.True(trainer.Resume());
            Assert.Equal(previous, trainer.ResumedFrom);
            Assert.Equal(4, trainer.State.Step);
            Assert.Equal(0, trainer.State.Epoch);
            var note = Assert.Single(trainer.ResumeNotes);
            Assert.StartsWith($"checkpoint {latest} is damaged ({modelFile}: ", note);
            Assert.Contains("truncated or overwritten", note);
            Assert.EndsWith($"resumed from the previous good checkpoint, {previous}", note);
            Assert.False(Directory.Exists(latest));
        }

        // A flipped byte of the optimizer state, and no checkpoint left to fall back to: an error naming both problems.
        var optimizerFile = Path.Combine(previous, CheckpointStore.OptimizerFile);
        var bytes = File.ReadAllBytes(optimizerFile);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(optimizerFile, bytes);
        using (var model = NewModel(99))
        using (var trainer = new Trainer(model, options))
        {
            var error = Assert.Throws<InvalidDataException>(() => trainer.Resume());
            Assert.Contains($"no usable checkpoint to resume from: {previous}: {optimizerFile}: its SHA-256 differs from the manifest's", error.Message);
        }
    }

    [Fact]
    public void CurvesAreSavedAsCsvJsonAndPng()
    {
        var dir = Path.Combine(_root, "curves");
        using var model = NewModel(5);
        using var trainer = new Trainer(model, Options() with { Epochs = 2, LearningRate = 1e-3, OutputDirectory = dir, LogEvery = 2, CurvesPng = h => TrainingPlot.Png(h) });
        var result = trainer.Fit(Source(Examples(16, seed: 3), 9), Source(Examples(8, seed: 4), 0, shuffle: false));

        Assert.Equal(4, result.Files.Count);
        var png = File.ReadAllBytes(Path.Combine(dir, "curves.png"));
        Assert.True(png.Length > 1000);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        var steps = File.ReadAllLines(Path.Combine(dir, "curves-steps.csv"));
        Assert.Equal("epoch,step,batch,batches,loss,lr,accuracy,sequences_per_second", steps[0]);
        Assert.Equal(1 + 4, steps.Length); // 4 batches per epoch, a point every 2 steps
        var epochs = File.ReadAllLines(Path.Combine(dir, "curves-epochs.csv"));
        Assert.StartsWith("epoch,steps,train_loss,train_accuracy,dev_loss,dev_accuracy,dev_f1,dev_mcc,seconds", epochs[0]);
        Assert.Equal(3, epochs.Length);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "curves.json")));
        Assert.Equal(2, json.RootElement.GetProperty("Epochs").GetArrayLength());
        Assert.Equal(4, json.RootElement.GetProperty("Steps").GetArrayLength());
        Assert.Empty(Directory.GetFileSystemEntries(dir, "*.tmp*", SearchOption.AllDirectories));
    }

    private static TrainerOptions Options() => new()
    {
        Seed = 17,
        Progress = ProgressMode.None,
        Schedule = ScheduleKind.LinearWarmupDecay,
        WarmupRatio = 0.1,
        Epsilon = 1e-9,
    };

    private static nn.Module<Tensor, Tensor, Tensor, Tensor> NewModel(int seed, bool dropout = true)
    {
        manual_seed(seed);
        return dropout ? new TinyClassifierModelModule() : new TinyClassifierNoDropoutModelModule();
    }

    /// <summary>Pairs "[CLS] a [SEP] b [SEP]" of a sentence a of signal tokens (4 → label 1, 5 → label 0) and a sentence b of random tokens 6-15.</summary>
    private static List<EncodedExample> Examples(int count, int seed, int maxLength = 14)
    {
        var random = new Random(seed);
        var list = new List<EncodedExample>();
        for (var i = 0; i < count; i++)
        {
            var label = i % 2;
            var a = Enumerable.Range(0, random.Next(1, (maxLength - 3) / 2 + 1)).Select(_ => random.Next(6, 16)).ToList();
            var b = Enumerable.Range(0, random.Next(1, (maxLength - 3) / 2 + 1)).Select(_ => random.Next(6, 16)).ToList();
            for (var k = 0; k < a.Count; k++)
            {
                a[k] = label == 1 ? 4 : 5;
            }
            var ids = new List<int> { Cls };
            ids.AddRange(a);
            ids.Add(Sep);
            var segments = Enumerable.Repeat(0, ids.Count).ToList();
            ids.AddRange(b);
            ids.Add(Sep);
            segments.AddRange(Enumerable.Repeat(1, b.Count + 1));
            list.Add(new EncodedExample(i + 1, [.. ids], [.. segments], ids.Count, label, false, false));
        }

        return list;
    }

    private static BatchSource Source(List<EncodedExample> examples, int seed, bool shuffle = true)
    {
        var sampler = new FixedBucketSampler(examples.Select(e => e.ValidLength).ToList(), [8, 16], 4, shuffle, seed, LastBatch.Pad);
        return new BatchSource(
            epoch => sampler.Plan(epoch).Batches.Select(b => Batch.Create(examples, b, 4, LabelMode.Classification, Cls, Sep, Pad)),
            epoch => sampler.Plan(epoch).Batches.Count);
    }

    private static Batch Make(List<EncodedExample> examples, int[] indices, int seq) =>
        Batch.Create(examples, new BucketBatch(seq, indices), 4, LabelMode.Classification, Cls, Sep, Pad);
}
