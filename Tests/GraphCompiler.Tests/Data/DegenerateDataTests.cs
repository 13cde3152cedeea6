using System.Text.Json;
using System.Text.Json.Nodes;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.Training;
using GraphCompiler.Samples.Mrpc;
using GraphCompiler.Tests.Declarations;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Data;

/// <summary>Issue 21, part 4: files that parse but cannot serve (empty, header only, every row bad, one class) are
/// errors naming the file before any training; data that is small or one-sided gives a defined result, and the metrics
/// JSON is always valid (no NaN or infinity).</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
public sealed class DegenerateDataTests : IDisposable
{
    private const string Header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n";
    private const string Good = Header + "1\t1\t2\tThe cat sat.\tA cat was sitting.\n0\t3\t4\tIt rained.\tPrices rose.\n";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gc-degenerate-" + Guid.NewGuid().ToString("N")[..8]);

    public DegenerateDataTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("", "the file is empty; training needs at least one sentence pair")]
    [InlineData(Header, "the file has 1 line and no data rows (a header only); training needs at least one sentence pair")]
    [InlineData("\uFEFF" + Header, "the file has 1 line and no data rows (a header only)")]
    [InlineData(Header + "1\t1\t2\tonly four\n0\t1\t2\tA.\t\n", "all 2 data rows are bad and were skipped (line 2: too few fields: found 4, need at least 5 (separated by tabs); line 3: sentence b is empty)")]
    public void UnusableFile_IsAnErrorNamingTheFile(string text, string problem)
    {
        var path = Write("train.tsv", text);
        var data = SentencePairDataset.Load(path, SentencePairDataset.MrpcTsv with { BadRows = BadRows.Skip }, DataFixtures.Transform());
        var e = Assert.Throws<DataFormatException>(() => DataChecks.RequirePairs(data, "training"));
        Assert.Equal(path, e.File);
        Assert.Equal(0, e.Line);
        Assert.StartsWith($"{path}: ", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void OneClassTrainingData_IsAnError()
    {
        var path = Write("train.tsv", Header + "1\t1\t2\tA b.\tC d.\n1\t3\t4\tE f.\tG h.\n1\t5\t6\tI j.\tK l.\n");
        var data = SentencePairDataset.Load(path, SentencePairDataset.MrpcTsv, DataFixtures.Transform());
        var e = Assert.Throws<DataFormatException>(() => DataChecks.RequireEveryClass(data, ["0", "1"], "training"));
        Assert.Equal($"{path}: no pair has label '0' (the 3 pairs used for training: 3 labelled '1'); training needs examples of every class ('0', '1')", e.Message);

        var both = SentencePairDataset.Load(Write("both.tsv", Good), SentencePairDataset.MrpcTsv, DataFixtures.Transform());
        DataChecks.RequireEveryClass(both, ["0", "1"], "training");
    }

    [Fact]
    public void UndefinedMetrics_SaySoAndAreNotNaN()
    {
        // Dev all label 0 and the model answers 0 throughout: no positives at all, so F1 and MCC are 0/0.
        int[] predicted = [0, 0, 0];
        int[] actual = [0, 0, 0];
        var metrics = Metrics.Classification(predicted, actual);
        Assert.Equal(1.0, metrics[Metrics.Accuracy]);
        Assert.Equal(0.0, metrics[Metrics.F1]);
        Assert.Equal(0.0, metrics[Metrics.Mcc]);
        var notes = Metrics.ClassificationNotes(predicted, actual);
        Assert.Equal(
            ["f1: undefined (no label and no prediction is the positive class 1: 0/0), reported as 0", "mcc: undefined (the labels are all one class: 0/0), reported as 0"],
            notes);
        Assert.Equal(["mcc: undefined (the predictions are all one class: 0/0), reported as 0"], Metrics.ClassificationNotes([1, 1], [1, 0]));
        Assert.Empty(Metrics.ClassificationNotes([1, 0], [1, 0]));
    }

    [Fact]
    public void ReportJson_ReplacesNonFiniteNumbersAndNamesThem()
    {
        var report = new JsonObject
        {
            ["dev"] = new JsonObject { ["accuracy"] = double.NaN, ["f1"] = 0.5 },
            ["history"] = new JsonArray(new JsonObject { ["loss"] = double.PositiveInfinity }, (JsonNode?)JsonValue.Create(float.NegativeInfinity)),
        };
        Assert.ThrowsAny<ArgumentException>(() => report.ToJsonString()); // what the user hit
        ReportJson.ReplaceNonFinite(report);
        using var parsed = JsonDocument.Parse(report.ToJsonString());
        Assert.Equal(JsonValueKind.Null, parsed.RootElement.GetProperty("dev").GetProperty("accuracy").ValueKind);
        Assert.Equal(0.5, parsed.RootElement.GetProperty("dev").GetProperty("f1").GetDouble());
        Assert.Equal(["$.dev.accuracy", "$.history[0].loss", "$.history[1]"], parsed.RootElement.GetProperty("non_finite").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void TrainerRefusesEmptyDataBeforeTraining()
    {
        manual_seed(1);
        using var model = new TinyClassifierModelModule();
        using var trainer = new Trainer(model, new TrainerOptions { Progress = ProgressMode.None, Epochs = 1 });
        var empty = new BatchSource(_ => [], _ => 0);
        var one = new BatchSource(_ => throw new InvalidOperationException("must not be read"), _ => 1);
        Assert.Contains("the training data gives no batches", Assert.Throws<ArgumentException>(() => trainer.Fit(empty)).Message);
        Assert.Contains("the evaluation data gives no batches", Assert.Throws<ArgumentException>(() => trainer.Fit(one, empty)).Message);
        Assert.Equal(0, trainer.State.Step);
        Assert.Contains("the evaluation data has no examples", Assert.Throws<ArgumentException>(() => trainer.Evaluate(empty)).Message);
    }

    /// <summary>The user's case and its class, end to end: the run stops before the first epoch, naming the file.</summary>
    [Theory]
    [InlineData(Good, "", false, "dev.tsv", "the file is empty; evaluation needs at least one sentence pair")]
    [InlineData(Good, Header, false, "dev.tsv", "no data rows (a header only); evaluation needs at least one sentence pair")]
    [InlineData(Header + "1\t1\t2\tA.\n0\t1\t2\tB.\n", Good, true, "train.tsv", "all 2 data rows are bad and were skipped (line 2: too few fields")]
    [InlineData(Header + "0\t1\t2\tThe cat sat.\tA cat was sitting.\n0\t3\t4\tIt rained.\tPrices rose.\n", Good, false, "train.tsv", "no pair has label '1' (the 2 pairs used for training: 2 labelled '0')")]
    public void MrpcRun_UnusableData_FailsBeforeTraining(string train, string dev, bool skipBadRows, string file, string problem)
    {
        var data = Path.Combine(_dir, "data");
        Write("data/train.tsv", train);
        Write("data/dev.tsv", dev);
        var output = Path.Combine(_dir, "out");
        var log = new StringWriter();
        var e = Assert.Throws<DataFormatException>(() => MrpcRun.Run(Settings(data, output) with { SkipBadRows = skipBadRows }, log));
        Assert.StartsWith(Path.Combine(data, file) + ": ", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.DoesNotContain("[Epoch", log.ToString());
        Assert.False(Directory.Exists(Path.Combine(output, "checkpoints")), "a checkpoint was written: training started");
    }

    /// <summary>A train set far smaller than one batch (3 pairs, batch 32: padded) and a one-class dev set: the run
    /// completes, F1 is 0 with a note saying why, and report.json is valid JSON.</summary>
    [Fact]
    public void MrpcRun_TinyTrainAndOneClassDev_GiveADefinedReport()
    {
        var data = Path.Combine(_dir, "data");
        Write("data/train.tsv", Good + "1\t5\t6\tHe left early.\tHe departed early.\n");
        Write("data/dev.tsv", Header + "0\t1\t2\tThe sky is blue.\tStocks fell sharply today.\n0\t3\t4\tShe sings.\tThe bus was late.\n");
        var output = Path.Combine(_dir, "out");
        var log = new StringWriter();
        var report = MrpcRun.Run(Settings(data, output), log);

        Assert.Equal(3, (int)report["train_examples"]!);
        Assert.Equal(1, (int)report["best_epoch"]!);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "report.json")));
        var devJson = json.RootElement.GetProperty("dev");
        Assert.InRange(devJson.GetProperty("accuracy").GetDouble(), 0, 1);
        Assert.Equal(JsonValueKind.Number, devJson.GetProperty("loss").ValueKind);
        var notes = devJson.GetProperty("notes").EnumerateArray().Select(n => n.GetString()!).ToList();
        var f1 = devJson.GetProperty("f1").GetDouble();
        Assert.Equal(0.0, f1); // no positive labels: 0 either way, whether the model predicts a positive (FP) or not
        Assert.Contains(notes, n => n.StartsWith("mcc: undefined (the labels are all one class", StringComparison.Ordinal));
        Assert.False(json.RootElement.TryGetProperty("non_finite", out _));
        Assert.Contains("(best epoch 1)", log.ToString());
    }

    private static MrpcSettings Settings(string data, string output) => new()
    {
        DataDirectory = data,
        Epochs = 1,
        Int8 = false,
        Output = output,
        Progress = ProgressMode.Lines,
    };

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, DataFixtures.Utf8(text));
        return path;
    }
}
