using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.IO;
using GraphCompiler.Runtime.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Training;

/// <summary>The batches of each epoch and how many there are (the schedule needs the count before training). The
/// trainer disposes every batch it is given.</summary>
public sealed class BatchSource(Func<int, IEnumerable<Batch>> epoch, Func<int, int> count)
{
    public IEnumerable<Batch> Epoch(int epoch1) => epoch(epoch1);

    public int Count(int epoch1) => count(epoch1);

    /// <summary>A data loader's epochs (its sampler's plan of each epoch).</summary>
    public static BatchSource From(GraphCompiler.Runtime.Data.DataLoader loader) => new(e => loader.Epoch(e), e => loader.Sampler.Plan(e).Batches.Count);
}

/// <summary>A dev evaluation: mean loss over real rows, the task's metrics, and the predictions of the real rows in
/// order (class index or value) with their labels.</summary>
public sealed record EvaluationResult(double Loss, IReadOnlyDictionary<string, double> Metrics, IReadOnlyList<double> Predictions, IReadOnlyList<double> Labels)
{
    public int Examples => Predictions.Count;

    /// <summary>Metrics that are undefined on this data (e.g. F1 without positives), each saying what is reported.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}

/// <summary>What a run produced: the history, the best epoch (1-based, null without dev data) with its dev metrics,
/// throughput over the training steps (evaluation excluded), the process's peak memory, the files written.</summary>
public sealed record TrainingResult(
    TrainingHistory History,
    int Steps,
    bool Completed,
    int? BestEpoch,
    string BestMetric,
    double? BestValue,
    IReadOnlyDictionary<string, double>? BestDev,
    double TrainSeconds,
    long TrainSequences,
    double SequencesPerSecond,
    long PeakMemoryBytes,
    IReadOnlyList<string> Files);

/// <summary>Training stopped because the loss or the gradient norm was NaN or infinite. The step's update was not
/// applied and no checkpoint was written after it: <see cref="LastCheckpoint"/> is the last good one.</summary>
public sealed class TrainingDivergedException(string message, int epoch, int step, string? lastCheckpoint) : Exception(message)
{
    /// <summary>1-based.</summary>
    public int Epoch { get; } = epoch;

    /// <summary>The optimizer step (1-based) that failed.</summary>
    public int Step { get; } = step;

    public string? LastCheckpoint { get; } = lastCheckpoint;
}

/// <summary>Fine-tunes a model: Adam/AdamW with decay groups, global-norm clipping, warmup + linear decay, gradient
/// accumulation, dev evaluation each epoch with the best epoch kept, atomic checkpoints that resume to the same result,
/// NaN/inf detection, progress and curves. Works with any module and a forward over a <see cref="Batch"/>; generated
/// modules run their generated backward in train mode.</summary>
public sealed class Trainer : IDisposable
{
    private readonly Func<Batch, Tensor> _forward;
    private readonly ITrainingProgress _progress;
    private Dictionary<string, Tensor>? _bestInMemory;
    private string? _lastCheckpoint;
    private readonly double[] _learningRateScales;

    /// <summary>A BERT-style model called as <c>model.call(TokenIds, SegmentIds, ValidLength)</c>.</summary>
    public Trainer(nn.Module<Tensor, Tensor, Tensor, Tensor> model, TrainerOptions options)
        : this(model, b => model.call(b.TokenIds, b.SegmentIds, b.ValidLength), options)
    {
    }

    public Trainer(nn.Module model, Func<Batch, Tensor> forward, TrainerOptions options)
    {
        options.Validate();
        NativeHeap.KeepFreedMemory();
        Model = model;
        _forward = forward;
        Options = options;
        var plan = Optimizers.Plan(model, options);
        Optimizer = Optimizers.Create(plan, options);
        _learningRateScales = plan.Select(g => g.LearningRateScale).ToArray();
        State = new TrainerState { Seed = options.Seed, BestMetric = options.BestMetric ?? Metrics.For(options.Task)[0] };
        Checkpoints = options.OutputDirectory is null ? null : new CheckpointStore(options.OutputDirectory);
        _progress = options.ProgressReporter ?? TrainingProgress.Create(options.Progress, options.Log);
    }

    public nn.Module Model { get; }

    public OptimizerHelper Optimizer { get; }

    public TrainerOptions Options { get; }

    public TrainerState State { get; private set; }

    /// <summary>Null when <see cref="TrainerOptions.OutputDirectory"/> is.</summary>
    public CheckpointStore? Checkpoints { get; }

    /// <summary>The dropout seed of optimizer step <paramref name="step"/> (0-based).</summary>
    public static long StepSeed(int seed, int step) => (((long)seed * 1_000_003L) + step) & 0x7FFF_FFFF_FFFFL;

    /// <summary>The checkpoint the last <see cref="Resume"/> loaded, or null.</summary>
    public string? ResumedFrom { get; private set; }

    /// <summary>What the last <see cref="Resume"/> passed over: one line per damaged checkpoint, naming it, what is
    /// wrong and which checkpoint was used instead.</summary>
    public IReadOnlyList<string> ResumeNotes { get; private set; } = [];

    /// <summary>Continues from <paramref name="checkpoint"/>, or by default from the output directory's newest checkpoint
    /// that verifies (<see cref="CheckpointStore.Verify"/>): a damaged newest checkpoint is removed and the previous one
    /// used, as <see cref="ResumeNotes"/> says. False when there is no checkpoint; an
    /// <see cref="InvalidDataException"/> when none is usable.</summary>
    public bool Resume(string? checkpoint = null)
    {
        var candidates = checkpoint is not null ? [checkpoint] : Checkpoints?.ResumeCandidates() ?? [];
        if (candidates.Count == 0)
        {
            return false;
        }

        var damaged = new List<(string Path, string Problem)>();
        TrainerState? state = null;
        string? used = null;
        foreach (var candidate in candidates)
        {
            try
            {
                CheckpointStore.Verify(candidate);
                state = CheckpointStore.Load(candidate, Model, Optimizer);
                used = candidate;
                break;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or JsonException or WeightLoadException or ArgumentException or InvalidOperationException)
            {
                damaged.Add((candidate, e.Message));
            }
        }

        if (state is null || used is null)
        {
            throw new InvalidDataException($"no usable checkpoint to resume from: {string.Join("; ", damaged.Select(d => $"{d.Path}: {d.Problem}"))}");
        }

        if (state.Seed != Options.Seed)
        {
            throw new InvalidOperationException($"checkpoint {used} was trained with seed {state.Seed}, these options have seed {Options.Seed}");
        }

        var notes = new List<string>();
        foreach (var (path, problem) in damaged)
        {
            // Removed so that training writes it again (a checkpoint of that name would otherwise be kept as it is).
            System.IO.Directory.Delete(path, recursive: true);
            notes.Add($"checkpoint {path} is damaged ({problem}); removed it and resumed from the previous good checkpoint, {used}");
        }

        ResumeNotes = notes;
        ResumedFrom = used;
        State = state;
        _lastCheckpoint = used;
        return true;
    }

    /// <summary>Trains to <see cref="TrainerOptions.Epochs"/> (or stops after <paramref name="stopAfterSteps"/> optimizer
    /// steps in all, checkpointing there), evaluating on <paramref name="dev"/> after each epoch.</summary>
    public TrainingResult Fit(BatchSource train, BatchSource? dev = null, int? stopAfterSteps = null, CancellationToken cancellation = default)
    {
        // Empty data would train nothing and evaluate to NaN; say so before any work.
        if (train.Count(State.Epoch < Options.Epochs ? State.Epoch : 0) == 0)
        {
            throw new ArgumentException("the training data gives no batches: there is nothing to train on", nameof(train));
        }

        if (dev is not null && dev.Count(0) == 0)
        {
            throw new ArgumentException("the evaluation data gives no batches: there is nothing to evaluate on", nameof(dev));
        }

        var stepsPerEpoch = Enumerable.Range(0, Options.Epochs).Select(e => (train.Count(e) + Options.AccumulationSteps - 1) / Options.AccumulationSteps).ToArray();
        var total = stepsPerEpoch.Sum();
        if (State.Step > 0 && State.TotalSteps != total)
        {
            throw new InvalidOperationException($"the checkpoint's run has {State.TotalSteps} optimizer steps, this data and these options give {total}");
        }

        State.TotalSteps = total;
        var schedule = LearningRateSchedule.Create(Options.Schedule, Options.LearningRate, total, Options.WarmupRatio);
        var files = new List<string>();
        var completed = true;
        var title = $"Training {Options.Epochs} epoch(s), {total} optimizer steps";
        try
        {
            _progress.Run(title, total, () => completed = RunEpochs(train, dev, schedule, stopAfterSteps, cancellation));
        }
        finally
        {
            if (Options.OutputDirectory is not null && State.History.Steps.Count + State.History.Epochs.Count > 0)
            {
                files.AddRange(State.History.Save(Options.OutputDirectory, png: Options.CurvesPng));
            }
        }

        if (completed && Options.RestoreBest && State.BestEpoch is not null)
        {
            RestoreBest();
        }

        var seconds = State.TrainSeconds;
        return new TrainingResult(
            State.History, State.Step, completed, State.BestEpoch + 1, State.BestMetric, State.BestValue, State.BestDev,
            seconds, State.TrainSequences, seconds > 0 ? State.TrainSequences / seconds : 0, ResourceUsage.PeakWorkingSetBytes(), files);
    }

    /// <summary>Loss and metrics on <paramref name="data"/>'s epoch 0, in eval mode without gradients; the model is left
    /// in eval mode.</summary>
    public EvaluationResult Evaluate(BatchSource data)
    {
        Model.eval();
        using var noGrad = no_grad();
        var predictions = new List<double>();
        var labels = new List<double>();
        var lossSum = 0.0;
        foreach (var batch in data.Epoch(0))
        {
            using (batch)
            {
                using var scope = NewDisposeScope();
                var label = batch.Label ?? throw new ArgumentException("evaluation batches need labels", nameof(data));
                var output = _forward(batch);
                lossSum += LossSum(output, batch).ToDouble();
                var real = output.narrow(0, 0, batch.Rows);
                var values = Options.Task == TaskKind.Classification
                    ? real.argmax(-1).to(ScalarType.Float64).data<double>().ToArray()
                    : real.reshape(-1).to(ScalarType.Float64).data<double>().ToArray();
                predictions.AddRange(values);
                labels.AddRange(label.narrow(0, 0, batch.Rows).to(ScalarType.Float64).data<double>().ToArray());
            }
        }

        if (predictions.Count == 0)
        {
            throw new ArgumentException("the evaluation data has no examples: its metrics would be undefined", nameof(data));
        }

        var classification = Options.Task == TaskKind.Classification;
        var predicted = predictions.Select(p => (int)p).ToList();
        var actual = labels.Select(l => (int)l).ToList();
        var metrics = classification ? Metrics.Classification(predicted, actual) : Metrics.Regression(predictions, labels);
        return new EvaluationResult(lossSum / predictions.Count, metrics, predictions, labels)
        {
            Notes = classification ? Metrics.ClassificationNotes(predicted, actual) : [],
        };
    }

    public void Dispose()
    {
        Optimizer.Dispose();
        DropBest();
    }

    private bool RunEpochs(BatchSource train, BatchSource? dev, LearningRateSchedule schedule, int? stopAfterSteps, CancellationToken cancellation)
    {
        while (State.Epoch < Options.Epochs)
        {
            var epoch = State.Epoch;
            var count = train.Count(epoch);
            var group = new List<Batch>(Options.AccumulationSteps);
            var index = 0;
            Model.train();
            try
            {
                foreach (var batch in train.Epoch(epoch))
                {
                    if (index++ < State.BatchInEpoch)
                    {
                        batch.Dispose();
                        continue;
                    }

                    group.Add(batch);
                    if (group.Count == Options.AccumulationSteps || State.BatchInEpoch + group.Count >= count)
                    {
                        TrainStep(group, epoch, count, schedule, cancellation);
                        DisposeAll(group);
                        if (stopAfterSteps is { } stop && State.Step >= stop && State.Step < State.TotalSteps)
                        {
                            Checkpoint();
                            return false;
                        }
                    }
                }

                if (group.Count > 0)
                {
                    TrainStep(group, epoch, count, schedule, cancellation);
                    DisposeAll(group);
                }
            }
            finally
            {
                DisposeAll(group);
            }

            EndEpoch(epoch, dev);
        }

        return true;
    }

    private void TrainStep(List<Batch> group, int epoch, int count, LearningRateSchedule schedule, CancellationToken cancellation)
    {
        cancellation.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();
        random.manual_seed(StepSeed(Options.Seed, State.Step));
        Optimizer.zero_grad();
        long rows = group.Sum(b => b.Rows);
        var lossSum = 0.0;
        long correct = 0;
        foreach (var batch in group)
        {
            using var scope = NewDisposeScope();
            var output = _forward(batch);
            var sum = LossSum(output, batch);
            var value = sum.ToDouble();
            if (!double.IsFinite(value))
            {
                throw Diverged(epoch, count, group, $"the loss is {Describe(value)}");
            }

            (sum / Math.Max(1L, rows)).backward();
            lossSum += value;
            if (Options.Task == TaskKind.Classification)
            {
                var right = output.detach().argmax(-1).eq(batch.Label!).logical_and(batch.RowMask);
                correct += right.sum().item<long>();
            }
        }

        if (Options.MaxGradNorm is { } max)
        {
            var norm = nn.utils.clip_grad_norm_(Model.parameters().Where(p => p.requires_grad), max);
            if (!double.IsFinite(norm))
            {
                throw Diverged(epoch, count, group, $"the gradient norm is {Describe(norm)}");
            }
        }

        var lr = schedule.At(State.Step);
        Optimizers.SetLearningRate(Optimizer, lr, _learningRateScales);
        Optimizer.step();

        // TorchSharp releases an autograd graph's native memory (custom-function nodes, the graph behind each output)
        // through .NET finalizers, not reference counts: without a collection here every step's activations stay
        // alive until the GC happens to run (measured on MiniLM 32×128: +0.5 GB per step, an 8.2 GB peak over MRPC).
        GC.Collect();
        GC.WaitForPendingFinalizers();
        clock.Stop();

        State.Step++;
        FaultPoints.AfterStep(State.Step);
        State.BatchInEpoch += group.Count;
        State.LearningRate = lr;
        State.EpochLossSum += lossSum;
        State.EpochRows += rows;
        State.EpochCorrect += correct;
        State.IntervalLossSum += lossSum;
        State.IntervalRows += rows;
        State.IntervalSeconds += clock.Elapsed.TotalSeconds;
        State.EpochSeconds += clock.Elapsed.TotalSeconds;
        State.TrainSeconds += clock.Elapsed.TotalSeconds;
        State.TrainSequences += rows;

        var accuracy = Options.Task == TaskKind.Classification && State.EpochRows > 0 ? (double)State.EpochCorrect / State.EpochRows : double.NaN;
        var speed = State.IntervalSeconds > 0 ? State.IntervalRows / State.IntervalSeconds : 0;
        var loss = State.IntervalRows > 0 ? State.IntervalLossSum / State.IntervalRows : double.NaN;
        _progress.Update(State.Step, $"epoch {epoch + 1}/{Options.Epochs} loss {loss:F4} lr {lr:E2} acc {accuracy:F3} {speed:F1} seq/s");
        if (State.Step % Options.LogEvery == 0 || State.BatchInEpoch >= count)
        {
            State.History.Steps.Add(new StepRecord(epoch + 1, State.Step, State.BatchInEpoch, count, loss, lr, accuracy, speed));
            _progress.Line(string.Create(
                CultureInfo.InvariantCulture,
                $"[Epoch {epoch + 1} Batch {State.BatchInEpoch}/{count}] loss={loss:F4}, lr={lr:F7}, acc={accuracy:F3}, {speed:F1} seq/s"));
            State.IntervalLossSum = 0;
            State.IntervalRows = 0;
            State.IntervalSeconds = 0;
        }

        if (Options.CheckpointEvery > 0 && State.Step % Options.CheckpointEvery == 0)
        {
            Checkpoint();
        }
    }

    private void EndEpoch(int epoch, BatchSource? dev)
    {
        var clock = Stopwatch.StartNew();
        EvaluationResult? result = dev is null ? null : Evaluate(dev);
        Model.train();
        var trainLoss = State.EpochRows > 0 ? State.EpochLossSum / State.EpochRows : double.NaN;
        var trainAccuracy = Options.Task == TaskKind.Classification && State.EpochRows > 0 ? (double)State.EpochCorrect / State.EpochRows : double.NaN;
        var devMetrics = result?.Metrics ?? new Dictionary<string, double>();
        State.History.Epochs.Add(new EpochRecord(epoch + 1, State.Step, trainLoss, trainAccuracy, result?.Loss, devMetrics, State.EpochSeconds + clock.Elapsed.TotalSeconds));
        var line = string.Create(CultureInfo.InvariantCulture, $"[Epoch {epoch + 1}] train loss={trainLoss:F4}, acc={trainAccuracy:F3}");
        if (result is not null)
        {
            line += string.Create(CultureInfo.InvariantCulture, $"; dev loss={result.Loss:F4}, ") + string.Join(", ", result.Metrics.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}={kv.Value:F4}")));
            var value = State.BestMetric == "loss" ? result.Loss : result.Metrics[State.BestMetric];
            var better = State.BestValue is not { } best || (Metrics.HigherIsBetter(State.BestMetric) ? value > best : value < best);
            if (better && double.IsFinite(value))
            {
                State.BestEpoch = epoch;
                State.BestValue = value;
                State.BestDev = new Dictionary<string, double>(result.Metrics, StringComparer.Ordinal);
                KeepBest();
                line += " (best so far)";
            }
        }

        _progress.Line(line);
        State.Epoch = epoch + 1;
        State.BatchInEpoch = 0;
        State.EpochLossSum = 0;
        State.EpochRows = 0;
        State.EpochCorrect = 0;
        State.EpochSeconds = 0;
        Checkpoint();
    }

    private Tensor LossSum(Tensor output, Batch batch)
    {
        var label = batch.Label ?? throw new ArgumentException("training batches need labels (LabelMode.Classification or Regression)");
        return Options.Task == TaskKind.Classification
            ? Losses.CrossEntropySum(output, label, batch.RowMask)
            : Losses.SquaredErrorSum(output, label, batch.RowMask);
    }

    private void Checkpoint()
    {
        if (Checkpoints is not null)
        {
            _lastCheckpoint = Checkpoints.Save(Model, Optimizer, State);
        }
    }

    private string BestPath => Path.Combine(Options.OutputDirectory!, "best", CheckpointStore.ModelFile);

    private void KeepBest()
    {
        if (Options.OutputDirectory is not null)
        {
            SafeTensors.Write(BestPath, WeightLoader.CheckpointTensors(Model), new Dictionary<string, string>
            {
                ["epoch"] = (State.BestEpoch!.Value + 1).ToString(CultureInfo.InvariantCulture),
                [State.BestMetric] = State.BestValue!.Value.ToString("R", CultureInfo.InvariantCulture),
            });
            return;
        }

        DropBest();
        _bestInMemory = Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone(), StringComparer.Ordinal);
    }

    private void RestoreBest()
    {
        if (Options.OutputDirectory is not null && File.Exists(BestPath))
        {
            using var weights = SafeTensors.Read(BestPath);
            WeightLoader.Load(Model, weights);
            return;
        }

        if (_bestInMemory is not null)
        {
            using var noGrad = no_grad();
            foreach (var (name, p) in Model.named_parameters())
            {
                p.copy_(_bestInMemory[name]);
            }
        }
    }

    private void DropBest()
    {
        if (_bestInMemory is not null)
        {
            foreach (var t in _bestInMemory.Values)
            {
                t.Dispose();
            }

            _bestInMemory = null;
        }
    }

    private TrainingDivergedException Diverged(int epoch, int count, List<Batch> group, string what)
    {
        var first = State.BatchInEpoch + 1;
        var batches = group.Count == 1 ? $"batch {first}/{count}" : $"batches {first}-{first + group.Count - 1}/{count}";
        var where = _lastCheckpoint is null ? "no checkpoint was written before it" : $"the last good checkpoint is {_lastCheckpoint}";
        return new TrainingDivergedException(
            $"Training stopped at epoch {epoch + 1}, step {State.Step + 1} ({batches}): {what}. The step was not applied; {where}. " +
            "Lower the learning rate, enable gradient clipping, or check the inputs.",
            epoch + 1,
            State.Step + 1,
            _lastCheckpoint);
    }

    private static string Describe(double v) => double.IsNaN(v) ? "NaN" : v > 0 ? "+inf" : "-inf";

    private static void DisposeAll(List<Batch> group)
    {
        foreach (var b in group)
        {
            b.Dispose();
        }

        group.Clear();
    }
}
