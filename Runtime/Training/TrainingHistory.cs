using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using GraphCompiler.Runtime.Weights;

namespace GraphCompiler.Runtime.Training;

/// <summary>One logged point: the mean loss of the real rows since the previous point, the epoch's running accuracy
/// (classification; NaN for regression), the learning rate of the last step, and throughput since the previous point.
/// <see cref="Step"/> counts optimizer steps from 1; <see cref="Batch"/> is the batches done in the epoch (1-based).</summary>
public sealed record StepRecord(int Epoch, int Step, int Batch, int Batches, double Loss, double LearningRate, double Accuracy, double SequencesPerSecond);

/// <summary>One epoch: the training loss and accuracy over its real rows, the dev metrics (empty without dev data), its
/// seconds (training and evaluation).</summary>
public sealed record EpochRecord(int Epoch, int Steps, double TrainLoss, double TrainAccuracy, double? DevLoss, IReadOnlyDictionary<string, double> Dev, double Seconds);

/// <summary>Everything the trainer logged: per-step points and per-epoch records.</summary>
public sealed class TrainingHistory
{
    public List<StepRecord> Steps { get; init; } = [];

    public List<EpochRecord> Epochs { get; init; } = [];

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>The step points as CSV (invariant culture, round-trip numbers).</summary>
    public string StepsCsv()
    {
        var s = new StringBuilder("epoch,step,batch,batches,loss,lr,accuracy,sequences_per_second\n");
        foreach (var r in Steps)
        {
            s.Append(CultureInfo.InvariantCulture, $"{r.Epoch},{r.Step},{r.Batch},{r.Batches},{N(r.Loss)},{N(r.LearningRate)},{N(r.Accuracy)},{N(r.SequencesPerSecond)}\n");
        }

        return s.ToString();
    }

    /// <summary>The epoch records as CSV, one column per dev metric.</summary>
    public string EpochsCsv()
    {
        var metrics = Epochs.SelectMany(e => e.Dev.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        var s = new StringBuilder("epoch,steps,train_loss,train_accuracy,dev_loss");
        foreach (var m in metrics)
        {
            s.Append(",dev_").Append(m);
        }

        s.Append(",seconds\n");
        foreach (var e in Epochs)
        {
            s.Append(CultureInfo.InvariantCulture, $"{e.Epoch},{e.Steps},{N(e.TrainLoss)},{N(e.TrainAccuracy)},{(e.DevLoss is { } d ? N(d) : "")}");
            foreach (var m in metrics)
            {
                s.Append(',').Append(e.Dev.TryGetValue(m, out var v) ? N(v) : "");
            }

            s.Append(',').Append(N(e.Seconds)).Append('\n');
        }

        return s.ToString();
    }

    /// <summary>Writes <c>{name}.json</c>, <c>{name}-steps.csv</c>, <c>{name}-epochs.csv</c> and, when <paramref name="png"/>
    /// draws one (GraphCompiler.Reporting's <c>TrainingPlot.Png</c>), <c>{name}.png</c> into <paramref name="directory"/>,
    /// each atomically; returns the paths.</summary>
    public IReadOnlyList<string> Save(string directory, string name = "curves", Func<TrainingHistory, byte[]>? png = null)
    {
        Directory.CreateDirectory(directory);
        var paths = new List<string>
        {
            Path.Combine(directory, name + ".json"),
            Path.Combine(directory, name + "-steps.csv"),
            Path.Combine(directory, name + "-epochs.csv"),
        };
        WriteText(paths[0], ToJson());
        WriteText(paths[1], StepsCsv());
        WriteText(paths[2], EpochsCsv());
        if (png is not null)
        {
            var picture = png(this);
            var path = Path.Combine(directory, name + ".png");
            AtomicFile.Write(path, s => s.Write(picture));
            paths.Add(path);
        }

        return paths;
    }

    internal static void WriteText(string path, string text) => AtomicFile.Write(path, s => s.Write(new UTF8Encoding(false).GetBytes(text)));

    private static string N(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
