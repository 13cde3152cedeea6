using GraphCompiler.Runtime.Training;
using Spectre.Console;

namespace GraphCompiler.Runtime.Reporting;

/// <summary>The trainer's progress on a console: a live Spectre.Console bar, or the trainer's plain lines where a bar
/// cannot be drawn.</summary>
public static class ConsoleProgress
{
    /// <summary><see cref="ProgressMode.Auto"/>: the bar on an interactive console when no log writer is given, plain lines
    /// otherwise (CI, redirected output); <see cref="ProgressMode.Bar"/>: the bar; the other kinds are the trainer's own
    /// (<see cref="TrainingProgress.Create"/>).</summary>
    public static ITrainingProgress Create(ProgressMode mode, TextWriter? log)
    {
        if (mode == ProgressMode.Auto)
        {
            mode = log is null && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive ? ProgressMode.Bar : ProgressMode.Lines;
        }

        return mode == ProgressMode.Bar ? new BarProgress() : TrainingProgress.Create(mode, log);
    }

    private sealed class BarProgress : ITrainingProgress
    {
        private ProgressTask? _task;

        public void Run(string title, double total, Action body) =>
            AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    _task = ctx.AddTask(Markup.Escape(title), maxValue: Math.Max(1, total));
                    body();
                });

        public void Update(double done, string status)
        {
            if (_task is not null)
            {
                _task.Value = done;
                _task.Description = Markup.Escape(status);
            }
        }

        public void Line(string text) => AnsiConsole.MarkupLine(Markup.Escape(text));
    }
}
