using Spectre.Console;

namespace GraphCompiler.Runtime.Training;

/// <summary>How the trainer shows progress: a live Spectre.Console bar, plain lines, or nothing. Log lines go to every
/// kind but the silent one.</summary>
public interface ITrainingProgress
{
    void Run(string title, double total, Action body);

    /// <summary>The bar's position and description (loss, lr, accuracy, sequences/s).</summary>
    void Update(double done, string status);

    void Line(string text);
}

public static class TrainingProgress
{
    public static ITrainingProgress Create(ProgressMode mode, TextWriter? log)
    {
        if (mode == ProgressMode.Auto)
        {
            mode = log is null && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive ? ProgressMode.Bar : ProgressMode.Lines;
        }

        return mode switch
        {
            ProgressMode.Bar => new BarProgress(),
            ProgressMode.Lines => new LineProgress(log ?? Console.Out),
            _ => new SilentProgress(),
        };
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

    private sealed class LineProgress(TextWriter log) : ITrainingProgress
    {
        public void Run(string title, double total, Action body)
        {
            log.WriteLine(title);
            body();
        }

        public void Update(double done, string status)
        {
        }

        public void Line(string text)
        {
            log.WriteLine(text);
            log.Flush();
        }
    }

    private sealed class SilentProgress : ITrainingProgress
    {
        public void Run(string title, double total, Action body) => body();

        public void Update(double done, string status)
        {
        }

        public void Line(string text)
        {
        }
    }
}
