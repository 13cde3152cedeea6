using GraphCompiler.Runtime.Training;

namespace GraphCompiler.Runtime.Reporting;

/// <summary>Plugs the console bar and the curves' picture into a trainer's options.</summary>
public static class TrainingReporting
{
    /// <summary>These options with <see cref="ConsoleProgress"/> for their <see cref="TrainerOptions.Progress"/> kind
    /// (and <see cref="TrainerOptions.Log"/>) and <see cref="TrainingPlot.Png"/> drawing <c>curves.png</c>.</summary>
    public static TrainerOptions WithConsoleReporting(this TrainerOptions options) => options with
    {
        ProgressReporter = ConsoleProgress.Create(options.Progress, options.Log),
        CurvesPng = history => TrainingPlot.Png(history),
    };
}
