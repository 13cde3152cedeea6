namespace GraphCompiler.Runtime.Training;

/// <summary>How the trainer shows progress: plain lines, nothing, or what an application plugs in through
/// <see cref="TrainerOptions.ProgressReporter"/> (GraphCompiler.Reporting's live console bar). Log lines go to every kind
/// but the silent one.</summary>
public interface ITrainingProgress
{
    void Run(string title, double total, Action body);

    /// <summary>The bar's position and description (loss, lr, accuracy, sequences/s).</summary>
    void Update(double done, string status);

    void Line(string text);
}

public static class TrainingProgress
{
    /// <summary>The trainer's own kinds: <see cref="ProgressMode.Lines"/> (to <paramref name="log"/>, or standard output)
    /// and <see cref="ProgressMode.None"/>; <see cref="ProgressMode.Auto"/> is lines here. The bar is GraphCompiler.Reporting's
    /// (<c>ConsoleProgress</c>, or <c>options.WithConsoleReporting()</c>), so that training brings no console UX.</summary>
    public static ITrainingProgress Create(ProgressMode mode, TextWriter? log) => mode switch
    {
        ProgressMode.Auto or ProgressMode.Lines => Lines(log ?? Console.Out),
        ProgressMode.None => Silent,
        ProgressMode.Bar => throw new ArgumentException(
            "ProgressMode.Bar is GraphCompiler.Reporting's console bar: set TrainerOptions.ProgressReporter to ConsoleProgress.Create(...) (or call options.WithConsoleReporting())",
            nameof(mode)),
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown progress mode"),
    };

    /// <summary>A line per log point (and the title) to <paramref name="log"/>.</summary>
    public static ITrainingProgress Lines(TextWriter log) => new LineProgress(log);

    /// <summary>Runs the body and shows nothing.</summary>
    public static ITrainingProgress Silent { get; } = new SilentProgress();

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
