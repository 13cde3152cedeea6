namespace GraphCompiler.Runtime.Data;

/// <summary>A data row that cannot be used: the file, the 1-based line number and what is wrong with it.</summary>
public sealed class DataFormatException(string source, int line, string problem)
    : Exception($"{source}, line {line}: {problem}")
{
    public string File { get; } = source;

    public int Line { get; } = line;

    public string Problem { get; } = problem;
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
