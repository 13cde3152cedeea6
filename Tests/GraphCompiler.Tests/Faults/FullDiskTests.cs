using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.IO;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Runtime.Training;
using GraphCompiler.Tests.Declarations;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Faults;

/// <summary>Issue 21, part 3: a checkpoint and an export written to a full disk (a size-limited tmpfs). The error names
/// the path and says the disk is full; the previous checkpoint and export stay whole; nothing half-written remains,
/// under the final name or a temporary one.</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
public sealed class FullDiskTests(ITestOutputHelper output)
{
    /// <summary>Bytes left free before the failing write: less than any file written, so each write fails midway.</summary>
    private const long Leave = 4096;

    [Fact]
    public void CheckpointOnAFullDisk_NamesThePathAndKeepsThePreviousCheckpoint()
    {
        using var fs = new SmallFileSystem(4 << 20);
        var dir = Path.Combine(fs.Root, "run");
        manual_seed(5);
        using var model = new TinyClassifierModelModule();
        using var trainer = new Trainer(model, new TrainerOptions { Seed = 17, Epochs = 1, LearningRate = 1e-3, Progress = ProgressMode.None, OutputDirectory = dir });
        trainer.Fit(Batches(8));
        var store = trainer.Checkpoints!;
        var good = store.Latest!;
        var before = Snapshot(store.CheckpointsDirectory);
        Assert.True(new FileInfo(Path.Combine(good, CheckpointStore.ModelFile)).Length > Leave);

        fs.Fill(Leave);
        using (no_grad())
        {
            foreach (var p in model.parameters())
            {
                p.add_(1);
            }
        }

        var next = trainer.State with { Step = trainer.State.Step + 1 };
        var error = Assert.Throws<DiskFullException>(() => store.Save(model, trainer.Optimizer, next));
        output.WriteLine(error.Message);
        var final = Path.Combine(store.CheckpointsDirectory, $"step-{next.Step:D6}-e{next.Epoch}-b{next.BatchInEpoch}");
        Assert.Equal(final, error.Path);
        Assert.StartsWith($"{final}: the disk is full (", error.Message);
        Assert.Contains($"the previous checkpoint {good} is unchanged", error.Message);
        Assert.True(DiskFullException.IsDiskFull(error.InnerException));

        Assert.Equal(good, store.Latest);
        Assert.False(Directory.Exists(final));
        Assert.Equal(before, Snapshot(store.CheckpointsDirectory)); // same files, same bytes; no temporary left
        CheckpointStore.Verify(good);
        using var reloaded = new TinyClassifierModelModule();
        using var check = new Trainer(reloaded, new TrainerOptions { Seed = 17, Progress = ProgressMode.None });
        Assert.Equal(trainer.State.Step, CheckpointStore.Load(good, reloaded, check.Optimizer).Step);
    }

    [Fact]
    public void ExportOnAFullDisk_NamesThePathAndKeepsThePreviousExport()
    {
        using var fs = new SmallFileSystem(4 << 20);
        var dir = Path.Combine(fs.Root, "export");
        manual_seed(5);
        using var model = new TinyClassifierModelModule();
        model.eval();
        var prefix = Path.Combine(dir, "tiny");
        ModelExport.Export(model, prefix);
        ModelExport.ExportOnnx(model, prefix + ".onnx");
        var before = Snapshot(dir);
        Assert.True(new FileInfo(ModelExport.ParamsPath(prefix)).Length > Leave);

        fs.Fill(Leave);
        using (no_grad())
        {
            foreach (var p in model.parameters())
            {
                p.add_(1);
            }
        }

        var pair = Assert.Throws<DiskFullException>(() => ModelExport.Export(model, prefix));
        output.WriteLine(pair.Message);
        Assert.Contains(pair.Path, new[] { ModelExport.ParamsPath(prefix), ModelExport.SymbolPath(prefix) });
        Assert.StartsWith($"{pair.Path}: the disk is full (", pair.Message);
        Assert.Contains("the previous pair, if any, is unchanged", pair.Message);

        var onnx = Assert.Throws<DiskFullException>(() => ModelExport.ExportOnnx(model, prefix + ".onnx"));
        output.WriteLine(onnx.Message);
        Assert.Equal(prefix + ".onnx", onnx.Path);
        Assert.StartsWith($"{prefix}.onnx: the disk is full (", onnx.Message);

        Assert.Equal(before, Snapshot(dir)); // the previous export, byte for byte; no temporary left
        using var block = SymbolBlock.Imports(ModelExport.SymbolPath(prefix), ["inputIds", "tokenTypes", "validLength"], ModelExport.ParamsPath(prefix));
    }

    /// <summary>Every file below <paramref name="dir"/> (relative path → bytes).</summary>
    private static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes);

    private static BatchSource Batches(int count)
    {
        var examples = Enumerable.Range(0, count)
            .Select(i => new EncodedExample(i + 1, [1, i % 2 == 0 ? 4 : 5, 2, 7, 2], [0, 0, 0, 1, 1], 5, i % 2, false, false))
            .ToList();
        var sampler = new FixedBucketSampler(examples.Select(e => e.ValidLength).ToList(), [8, 16], 4, shuffle: true, seed: 9, LastBatch.Pad);
        return new BatchSource(
            epoch => sampler.Plan(epoch).Batches.Select(b => Batch.Create(examples, b, 4, LabelMode.Classification, 1, 2, 0)),
            epoch => sampler.Plan(epoch).Batches.Count);
    }
}
