using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using GraphCompiler.Runtime.IO;
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
/// names, as <see cref="WeightLoader.CheckpointTensors"/>), <c>optimizer.bin</c> (TorchSharp's optimizer state),
/// <c>trainer.json</c> and <c>manifest.json</c> (each file's length and SHA-256); <c>checkpoints/latest</c> names the
/// newest. A checkpoint is written into a temporary sibling directory (each file fsynced) and renamed into place, then
/// <c>latest</c> is replaced atomically and all but the newest <see cref="Keep"/> checkpoints are removed, so a failure
/// or a kill at any point leaves the previous checkpoints whole and <c>latest</c> pointing at a complete one. The
/// previous checkpoint is kept so that a damaged newest one (see <see cref="Verify"/>) can be resumed past.</summary>
public sealed partial class CheckpointStore(string directory)
{
    public const string ModelFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.bin";
    public const string StateFile = "trainer.json";
    public const string ManifestFile = "manifest.json";

    /// <summary>Complete checkpoints kept: the newest and the one before it.</summary>
    public const int Keep = 2;

    public string Directory { get; } = Path.GetFullPath(directory);

    public string CheckpointsDirectory => Path.Combine(Directory, "checkpoints");

    /// <summary>The checkpoint <c>latest</c> names, or null.</summary>
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

    /// <summary>The checkpoints to resume from, best first: the one <c>latest</c> names, then every other complete
    /// checkpoint directory, newest first.</summary>
    public IReadOnlyList<string> ResumeCandidates()
    {
        var all = Complete().ToList();
        if (Latest is { } latest)
        {
            all.Remove(latest);
            all.Insert(0, latest);
        }

        return all;
    }

    /// <summary>Test hook: runs after the files are written into the temporary directory, before it is renamed.</summary>
    internal Action<string>? BeforeCommit { get; set; }

    public string Save(torch.nn.Module model, OptimizerHelper optimizer, TrainerState state)
    {
        var name = $"step-{state.Step:D6}-e{state.Epoch}-b{state.BatchInEpoch}";
        var final = Path.Combine(CheckpointsDirectory, name);
        var previous = Latest;
        try
        {
            System.IO.Directory.CreateDirectory(CheckpointsDirectory);
            AtomicFile.RemoveStale(CheckpointsDirectory);
            if (!System.IO.Directory.Exists(final))
            {
                var temp = AtomicFile.TempName(Path.Combine(CheckpointsDirectory, "." + name));
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
                    TrainingHistory.WriteText(Path.Combine(temp, ManifestFile), JsonSerializer.Serialize(Manifest(temp), TrainingHistory.Json));
                    BeforeCommit?.Invoke(temp);
                    System.IO.Directory.Move(temp, final);
                    DirectorySync.Flush(CheckpointsDirectory);
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
        }
        catch (IOException e) when (DiskFullException.IsDiskFull(e))
        {
            var kept = previous is null ? "no earlier checkpoint exists" : $"the previous checkpoint {previous} is unchanged";
            throw new DiskFullException(final, $"writing this checkpoint failed and nothing was left half-written; {kept}", e);
        }

        foreach (var old in Complete().Where(c => c != final).Skip(Keep - 1))
        {
            System.IO.Directory.Delete(old, recursive: true);
        }

        return final;
    }

    public static TrainerState ReadState(string checkpoint) =>
        JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(Path.Combine(checkpoint, StateFile)), TrainingHistory.Json)
        ?? throw new InvalidDataException($"{checkpoint}: empty trainer state");

    /// <summary>Checks a checkpoint's files against its manifest (present, same length, same SHA-256); an
    /// <see cref="InvalidDataException"/> names the file and what differs. Checkpoints written before manifests
    /// existed are checked for their files only.</summary>
    public static void Verify(string checkpoint)
    {
        var manifestPath = Path.Combine(checkpoint, ManifestFile);
        if (!File.Exists(manifestPath))
        {
            foreach (var file in new[] { StateFile, ModelFile, OptimizerFile })
            {
                if (!File.Exists(Path.Combine(checkpoint, file)))
                {
                    throw new InvalidDataException($"{Path.Combine(checkpoint, file)}: missing");
                }
            }

            return;
        }

        Dictionary<string, FileDigest>? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<Dictionary<string, FileDigest>>(File.ReadAllText(manifestPath), TrainingHistory.Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{manifestPath}: not a checkpoint manifest ({e.Message})", e);
        }

        if (manifest is null || !manifest.ContainsKey(ModelFile) || !manifest.ContainsKey(OptimizerFile) || !manifest.ContainsKey(StateFile))
        {
            throw new InvalidDataException($"{manifestPath}: does not list {ModelFile}, {OptimizerFile} and {StateFile}");
        }

        foreach (var (file, expected) in manifest)
        {
            var path = Path.Combine(checkpoint, file);
            if (!File.Exists(path))
            {
                throw new InvalidDataException($"{path}: missing");
            }

            var actual = Digest(path);
            if (actual.Bytes != expected.Bytes)
            {
                throw new InvalidDataException($"{path}: {actual.Bytes} bytes, the manifest says {expected.Bytes} (truncated or overwritten)");
            }

            if (!string.Equals(actual.Sha256, expected.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidDataException($"{path}: its SHA-256 differs from the manifest's (the contents are damaged)");
            }
        }
    }

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

    /// <summary>A file's length and SHA-256 (lower-case hex), as <c>manifest.json</c> records them.</summary>
    public sealed record FileDigest(long Bytes, string Sha256);

    private static Dictionary<string, FileDigest> Manifest(string directory) =>
        new[] { ModelFile, OptimizerFile, StateFile }.ToDictionary(f => f, f => Digest(Path.Combine(directory, f)), StringComparer.Ordinal);

    private static FileDigest Digest(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        var hash = SHA256.HashData(stream);
        return new FileDigest(stream.Length, Convert.ToHexStringLower(hash));
    }

    /// <summary>Complete checkpoint directories (named step-…, not temporary), newest first.</summary>
    private IEnumerable<string> Complete()
    {
        if (!System.IO.Directory.Exists(CheckpointsDirectory))
        {
            return [];
        }

        return System.IO.Directory.GetDirectories(CheckpointsDirectory)
            .Select(d => (Path: d, Match: NamePattern().Match(Path.GetFileName(d))))
            .Where(x => x.Match.Success)
            .OrderByDescending(x => long.Parse(x.Match.Groups[1].ValueSpan, CultureInfo.InvariantCulture))
            .ThenByDescending(x => long.Parse(x.Match.Groups[2].ValueSpan, CultureInfo.InvariantCulture))
            .ThenByDescending(x => long.Parse(x.Match.Groups[3].ValueSpan, CultureInfo.InvariantCulture))
            .Select(x => x.Path);
    }

    [GeneratedRegex(@"^step-(\d+)-e(\d+)-b(\d+)$")]
    private static partial Regex NamePattern();
}
