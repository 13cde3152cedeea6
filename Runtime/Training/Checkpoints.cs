using System.Text;
using System.Text.Json;
using GraphCompiler.Runtime.Weights;
using TorchSharp;
using TorchSharp.Modules;

namespace GraphCompiler.Runtime.Training;

/// <summary>Where training stands: enough to continue to the same result. Dropout is re-seeded every optimizer step
/// with <c>manual_seed(Trainer.StepSeed(Seed, Step))</c> and the data order is a function of (sampler seed, epoch), so no
/// RNG state beyond <see cref="Seed"/> and the position is needed.</summary>
public sealed record TrainerState
{
    public int Seed { get; init; }

    /// <summary>The epoch in progress (0-based); equals the epoch count when training is done.</summary>
    public int Epoch { get; set; }

    /// <summary>Batches of <see cref="Epoch"/> already trained on.</summary>
    public int BatchInEpoch { get; set; }

    /// <summary>Optimizer steps taken; the schedule's position.</summary>
    public int Step { get; set; }

    public int TotalSteps { get; set; }

    public double LearningRate { get; set; }

    public string BestMetric { get; set; } = Metrics.Accuracy;

    public int? BestEpoch { get; set; }

    public double? BestValue { get; set; }

    public Dictionary<string, double>? BestDev { get; set; }

    /// <summary>The epoch's running sums (real rows only) and those since the last logged point.</summary>
    public double EpochLossSum { get; set; }

    public long EpochRows { get; set; }

    public long EpochCorrect { get; set; }

    public double IntervalLossSum { get; set; }

    public long IntervalRows { get; set; }

    public double IntervalSeconds { get; set; }

    public double EpochSeconds { get; set; }

    public double TrainSeconds { get; set; }

    public long TrainSequences { get; set; }

    public TrainingHistory History { get; set; } = new();
}

/// <summary>Checkpoints in a directory: <c>checkpoints/step-NNNNNN-eE-bB/</c> holding <c>model.safetensors</c> (checkpoint
/// names, as <see cref="WeightLoader.CheckpointTensors"/>), <c>optimizer.bin</c> (TorchSharp's optimizer state) and
/// <c>trainer.json</c>; <c>checkpoints/latest</c> names the newest. A checkpoint is written into a temporary sibling
/// directory and renamed into place, then <c>latest</c> is replaced atomically and older checkpoints are removed, so a
/// failure at any point leaves the previous checkpoint whole and <c>latest</c> pointing at it.</summary>
public sealed class CheckpointStore(string directory)
{
    public const string ModelFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.bin";
    public const string StateFile = "trainer.json";

    public string Directory { get; } = Path.GetFullPath(directory);

    public string CheckpointsDirectory => Path.Combine(Directory, "checkpoints");

    /// <summary>The newest complete checkpoint's directory, or null.</summary>
    public string? Latest
    {
        get
        {
            var pointer = Path.Combine(CheckpointsDirectory, "latest");
            if (!File.Exists(pointer))
            {
                return null;
            }

            var path = Path.Combine(CheckpointsDirectory, File.ReadAllText(pointer).Trim());
            return System.IO.Directory.Exists(path) ? path : null;
        }
    }

    /// <summary>Test hook: runs after the files are written into the temporary directory, before it is renamed.</summary>
    internal Action<string>? BeforeCommit { get; set; }

    public string Save(torch.nn.Module model, OptimizerHelper optimizer, TrainerState state)
    {
        var name = $"step-{state.Step:D6}-e{state.Epoch}-b{state.BatchInEpoch}";
        var final = Path.Combine(CheckpointsDirectory, name);
        System.IO.Directory.CreateDirectory(CheckpointsDirectory);
        if (!System.IO.Directory.Exists(final))
        {
            var temp = Path.Combine(CheckpointsDirectory, "." + name + ".tmp-" + Guid.NewGuid().ToString("N")[..8]);
            try
            {
                System.IO.Directory.CreateDirectory(temp);
                SafeTensors.Write(Path.Combine(temp, ModelFile), WeightLoader.CheckpointTensors(model));
                AtomicFile.Write(Path.Combine(temp, OptimizerFile), stream =>
                {
                    using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
                    optimizer.save_state_dict(writer);
                });
                TrainingHistory.WriteText(Path.Combine(temp, StateFile), JsonSerializer.Serialize(state, TrainingHistory.Json));
                BeforeCommit?.Invoke(temp);
                System.IO.Directory.Move(temp, final);
            }
            catch
            {
                if (System.IO.Directory.Exists(temp))
                {
                    System.IO.Directory.Delete(temp, recursive: true);
                }

                throw;
            }
        }

        TrainingHistory.WriteText(Path.Combine(CheckpointsDirectory, "latest"), name);
        foreach (var old in System.IO.Directory.GetDirectories(CheckpointsDirectory))
        {
            if (Path.GetFileName(old) != name && !Path.GetFileName(old).StartsWith('.'))
            {
                System.IO.Directory.Delete(old, recursive: true);
            }
        }

        return final;
    }

    public static TrainerState ReadState(string checkpoint) =>
        JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(Path.Combine(checkpoint, StateFile)), TrainingHistory.Json)
        ?? throw new InvalidDataException($"{checkpoint}: empty trainer state");

    /// <summary>Loads a checkpoint's model parameters and optimizer state; returns its trainer state.</summary>
    public static TrainerState Load(string checkpoint, torch.nn.Module model, OptimizerHelper optimizer)
    {
        var state = ReadState(checkpoint);
        using (var weights = SafeTensors.Read(Path.Combine(checkpoint, ModelFile)))
        {
            WeightLoader.Load(model, weights);
        }

        using var stream = File.OpenRead(Path.Combine(checkpoint, OptimizerFile));
        using var reader = new BinaryReader(stream);
        optimizer.load_state_dict(reader);
        return state;
    }
}
