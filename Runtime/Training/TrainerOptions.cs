namespace GraphCompiler.Runtime.Training;

/// <summary>What the model predicts: class logits [batch, classes] (softmax cross-entropy) or one number per row
/// [batch] or [batch, 1] (mean squared error).</summary>
public enum TaskKind
{
    Classification,
    Regression,
}

public enum OptimizerKind
{
    /// <summary><c>torch.optim.Adam</c>; its weight decay is the L2 term added to the gradient.</summary>
    Adam,
    /// <summary><c>torch.optim.AdamW</c>: decoupled weight decay.</summary>
    AdamW,
}

public enum ScheduleKind
{
    /// <summary>The peak learning rate throughout.</summary>
    Constant,
    /// <summary>Linear warmup from 0 to the peak over the warmup steps, then linear decay to 0 at the last step.</summary>
    LinearWarmupDecay,
}

public enum ProgressMode
{
    /// <summary>Plain log lines; with GraphCompiler.Reporting's <c>ConsoleProgress</c>, a live bar on an interactive console
    /// and lines otherwise (CI, redirected output).</summary>
    Auto,
    /// <summary>GraphCompiler.Reporting's live console bar (<see cref="TrainerOptions.ProgressReporter"/>).</summary>
    Bar,
    Lines,
    None,
}

/// <summary>The trainer's settings. Defaults are the tutorial's (Adam, lr 5e-6, epsilon 1e-9, clipping at 1, 3 epochs,
/// a log line every 4 batches) with GluonNLP's full-script warmup ratio 0.1.</summary>
public sealed record TrainerOptions
{
    public TaskKind Task { get; init; } = TaskKind.Classification;

    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;

    public double LearningRate { get; init; } = 5e-6;

    public double Epsilon { get; init; } = 1e-9;

    public double Beta1 { get; init; } = 0.9;

    public double Beta2 { get; init; } = 0.999;

    /// <summary>Weight decay of the decayed group; biases and LayerNorm weights are never decayed.</summary>
    public double WeightDecay { get; init; }

    /// <summary>Layer-wise learning-rate decay: the head (pooler, classifier) trains at the schedule's rate, each encoder
    /// layer at this factor times the rate of the layer above it, the embeddings one factor below the lowest layer
    /// (ELECTRA's and Sun et al. 2019's recipe). 1 turns it off.</summary>
    public double LayerDecay { get; init; } = 1.0;

    /// <summary>Global L2 norm the gradients are clipped to; null for no clipping.</summary>
    public double? MaxGradNorm { get; init; } = 1.0;

    public ScheduleKind Schedule { get; init; } = ScheduleKind.LinearWarmupDecay;

    /// <summary>The fraction of all optimizer steps spent warming up.</summary>
    public double WarmupRatio { get; init; } = 0.1;

    /// <summary>Batches whose gradients add up to one optimizer step (the loss is the mean over all their real rows).</summary>
    public int AccumulationSteps { get; init; } = 1;

    public int Epochs { get; init; } = 3;

    /// <summary>Seeds the dropout masks (re-seeded every step from the seed and the step) and the parameter-free parts
    /// of training; the data order is the sampler's own seed.</summary>
    public int Seed { get; init; }

    /// <summary>A log line (and a curve point) every this many optimizer steps, and at each epoch's end.</summary>
    public int LogEvery { get; init; } = 4;

    /// <summary>Where checkpoints, the best model and the curves go; null keeps everything in memory.</summary>
    public string? OutputDirectory { get; init; }

    /// <summary>Also checkpoint every this many optimizer steps (0: only at each epoch's end).</summary>
    public int CheckpointEvery { get; init; }

    /// <summary>The dev metric that chooses the best epoch; null for the task's first (accuracy, Pearson).</summary>
    public string? BestMetric { get; init; }

    /// <summary>Load the best epoch's parameters into the model when training ends (when there was dev data).</summary>
    public bool RestoreBest { get; init; } = true;

    public ProgressMode Progress { get; init; } = ProgressMode.Auto;

    /// <summary>Reports progress in place of the trainer's own <see cref="Progress"/> kinds (plain lines, nothing): e.g.
    /// GraphCompiler.Reporting's console bar (<c>options.WithConsoleReporting()</c>). Null: <see cref="Progress"/> picks.</summary>
    public ITrainingProgress? ProgressReporter { get; init; }

    /// <summary>Draws the training curves as a PNG, saved as <c>curves.png</c> beside their CSV and JSON (e.g.
    /// GraphCompiler.Reporting's <c>TrainingPlot.Png</c>); null writes no picture.</summary>
    public Func<TrainingHistory, byte[]>? CurvesPng { get; init; }

    /// <summary>Where plain log lines go (default: standard output).</summary>
    public TextWriter? Log { get; init; }

    internal void Validate()
    {
        Check(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), "must be a positive number");
        Check(Epsilon > 0, nameof(Epsilon), "must be positive");
        Check(LayerDecay is > 0 and <= 1, nameof(LayerDecay), "must be in (0, 1] (1: the same rate for every layer)");
        Check(WeightDecay >= 0, nameof(WeightDecay), "must not be negative");
        Check(MaxGradNorm is null or > 0, nameof(MaxGradNorm), "must be positive (or null for no clipping)");
        Check(WarmupRatio is >= 0 and <= 1, nameof(WarmupRatio), "must be in [0, 1]");
        Check(AccumulationSteps >= 1, nameof(AccumulationSteps), "must be at least 1");
        Check(Epochs >= 1, nameof(Epochs), "must be at least 1");
        Check(LogEvery >= 1, nameof(LogEvery), "must be at least 1");
        Check(CheckpointEvery >= 0, nameof(CheckpointEvery), "must not be negative");
        if (BestMetric is not null && !Metrics.For(Task).Contains(BestMetric) && BestMetric != "loss")
        {
            throw new ArgumentException($"BestMetric '{BestMetric}' is not a metric of a {Task} task; use one of {string.Join(", ", Metrics.For(Task))} or loss", nameof(BestMetric));
        }
    }

    private static void Check(bool ok, string name, string what)
    {
        if (!ok)
        {
            throw new ArgumentOutOfRangeException(name, $"{name} {what}");
        }
    }
}
