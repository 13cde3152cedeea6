using GraphCompiler.ModelDefs;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime.Training;
using GraphCompiler.Runtime.Weights;
using GraphCompiler.Samples.Mrpc;
using TorchSharp;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Samples;

/// <summary>The MRPC sample end to end on its demo pairs (one epoch): the report has the promised fields, the model it
/// writes reloads to the same predictions, and a bad --data is a clear error.</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
public class MrpcSampleTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gc-mrpc-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    [Trait(VectorWidths.Category, VectorWidths.MainJob)]
    public void DemoRunWritesReportAndAReloadableModel()
    {
        var log = new StringWriter();
        var report = MrpcRun.Run(new MrpcSettings { Epochs = 1, Output = _dir, Progress = ProgressMode.Lines, TimingRuns = 1 }, log);

        Assert.Contains("DEMO DATA", log.ToString());
        foreach (var key in new[] { "model", "train_examples", "epochs", "train_seconds", "train_sequences_per_second", "peak_memory_bytes" })
        {
            Assert.True(report.ContainsKey(key), $"report.json lacks '{key}'");
        }

        Assert.Equal("minilm", (string?)report["model"]);
        Assert.Equal(32, (int)report["train_examples"]!);
        Assert.Equal(1e-4, (double)report["learning_rate"]!); // the full recipe's rate for MiniLM
        Assert.True((bool)report["reinit_pooler"]!);
        Assert.Contains("re-initialised the pooler: 2 tensors", log.ToString());
        var accuracy = (double)report["dev"]!["accuracy"]!;
        Assert.InRange(accuracy, 0, 1);
        Assert.True(File.Exists(Path.Combine(_dir, "report.json")));

        // The deployment half: int8 metrics, the three timings, the params sizes, a re-import with the same predictions.
        Assert.InRange((double)report["int8"]!["dev"]!["accuracy"]!, 0, 1);
        Assert.InRange((double)report["int8"]!["dev"]!["f1"]!, 0, 1);
        Assert.True((bool)report["int8"]!["imported_predictions_identical"]!);
        foreach (var key in new[] { "fp32_ms_per_batch", "int8_ms_per_batch", "ort_int8_ms_per_batch" })
        {
            Assert.True((double)report[key]! > 0, key);
        }

        var sizes = report["params_bytes"]!;
        output.WriteLine($"params: fp32 {(long)sizes["fp32"]!:N0} B, int8 {(long)sizes["int8"]!:N0} B, ratio {(double)sizes["ratio"]!:F3}");
        Assert.InRange((double)sizes["ratio"]!, 3.5, 4.1);
        Assert.True(report.ContainsKey("deploy"));
        foreach (var file in new[] { "minilm-int8-symbol.json", "minilm-int8-0000.params", "minilm-int8-vocab.txt", "minilm-int8.onnx", "minilm-fp32-ort-dynamic-int8.onnx" })
        {
            Assert.True(File.Exists(Path.Combine(_dir, "export", file)), file);
        }
        Assert.True(File.Exists(Path.Combine(_dir, "curves.png")));

        // The written checkpoint loads into a fresh model and predicts what the trained one does.
        using var tensors = ModelZoo.ReadCheckpoint(Path.Combine(_dir, "model.safetensors"));
        Assert.Equal("minilm", tensors.Metadata["model"]);
        using var reloaded = new MiniLmClassifierModule();
        WeightLoader.Load(reloaded, tensors);
        reloaded.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = randint(1000, 2000, new long[] { 32, 32 });
        var logits = reloaded.call(ids, zeros_like(ids), full(new long[] { 32 }, 20L, ScalarType.Int64));
        Assert.Equal(new long[] { 32, 2 }, logits.shape);
        Assert.False(logits.isnan().any().item<bool>());
    }

    /// <summary>A short real run (issue 5's CI check): MiniLM fine-tuned on the first 640 MRPC training pairs learns —
    /// the training loss falls and dev accuracy on all 408 dev pairs beats always answering "paraphrase" (279/408).</summary>
    [Fact]
    public void ShortMrpcRunLearnsAndBeatsTheMajorityClass()
    {
        var settings = new MrpcSettings
        {
            DataDirectory = GraphCompiler.Tests.Infrastructure.Mrpc.Directory,
            TrainLimit = 640,
            Epochs = 3,
            LearningRate = 1e-4,
            Int8 = false,
            Output = _dir,
            Progress = ProgressMode.None,
        };
        var report = MrpcRun.Run(settings, TextWriter.Null);

        Assert.Equal(640, (int)report["train_examples"]!);
        var history = report["history"]!.AsArray();
        var firstLoss = (double)report["first_logged_loss"]!;
        var lastEpochLoss = (double)history[^1]!["train_loss"]!;
        Assert.True(lastEpochLoss < firstLoss - 0.05, $"training loss did not fall: first logged {firstLoss:F4}, last epoch {lastEpochLoss:F4}");

        const double majority = 279.0 / 408;
        var accuracy = (double)report["dev"]!["accuracy"]!;
        Assert.True(accuracy > majority + 0.01, $"dev accuracy {accuracy:F4} does not beat the majority class ({majority:F4})");
    }

    [Fact]
    public void MissingDataFolderIsAClearError()
    {
        var missing = Path.Combine(_dir, "nowhere");
        var ex = Assert.Throws<FileNotFoundException>(() => MrpcRun.Run(new MrpcSettings { DataDirectory = missing, Output = _dir }, TextWriter.Null));
        Assert.Contains(Path.Combine(missing, "train.tsv"), ex.Message);
        Assert.Contains("--data", ex.Message);
    }

    [Fact]
    public void UnknownPresetIsAClearError()
    {
        var ex = Assert.Throws<ArgumentException>(() => MrpcRun.Run(new MrpcSettings { Preset = "fast", Output = _dir }, TextWriter.Null));
        Assert.Contains("'fast'", ex.Message);
    }
}
