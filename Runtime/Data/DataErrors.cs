namespace GraphCompiler.Runtime.Data;

/// <summary>Data that cannot be used: the file, the 1-based line number and what is wrong with it; or a whole file that
/// cannot serve its purpose (empty, no data rows, one class only), with <see cref="Line"/> 0.</summary>
public sealed class DataFormatException : Exception
{
    public DataFormatException(string source, int line, string problem)
        : base($"{source}, line {line}: {problem}")
    {
        File = source;
        Line = line;
        Problem = problem;
    }

    /// <summary>A problem of the whole file, not of one line.</summary>
    public DataFormatException(string source, string problem)
        : base($"{source}: {problem}")
    {
        File = source;
        Problem = problem;
    }

    public string File { get; }

    /// <summary>1-based; 0 when the problem is the whole file's.</summary>
    public int Line { get; }

    public string Problem { get; }
}

/// <summary>A row left out under <see cref="BadRows.Skip"/>.</summary>
public readonly record struct SkippedRow(int Line, string Problem)
{
    public override string ToString() => $"line {Line}: {Problem}";
}

/// <summary>What to do with a bad row: fail with a <see cref="DataFormatException"/> (default), or leave it out and
/// list it in the load report. Never a silent drop.</summary>
public enum BadRows
{
    Throw,
    Skip,
}

/// <summary>What a load did to a file's rows: how many were kept, which were skipped and why, how many pairs were
/// truncated to fit the maximum length, and how many pairs became single sentences because sentence b had no
/// tokens.</summary>
public sealed record DataReport(
    string Source,
    int Rows,
    IReadOnlyList<SkippedRow> Skipped,
    int TruncatedPairs,
    int SingleSentencePairs)
{
    /// <summary>Lines in the file, header lines and bad rows included (0: an empty file).</summary>
    public int Lines { get; init; }

    /// <summary>Data rows in the file: those kept and those skipped.</summary>
    public int DataRows => Rows + Skipped.Count;

    public override string ToString()
    {
        var text = $"{Source}: {Rows} rows, {TruncatedPairs} truncated to fit, {SingleSentencePairs} with an empty sentence b after tokenization";
        if (Skipped.Count == 0)
        {
            return text + ", none skipped";
        }

        var shown = string.Join("; ", Skipped.Take(10));
        return $"{text}, {Skipped.Count} skipped ({shown}{(Skipped.Count > 10 ? "; …" : string.Empty)})";
    }
}
