namespace GraphCompiler.Runtime.Data;

/// <summary>Whole-file checks run after loading and before any training: a file that cannot serve its purpose (no
/// pairs at all, or one class only for training) is a <see cref="DataFormatException"/> naming the file and what is
/// wrong, instead of epochs of work that end in NaN metrics.</summary>
public static class DataChecks
{
    /// <summary>Throws unless <paramref name="data"/> has at least one pair; <paramref name="use"/> says what the file is
    /// for ("training", "evaluation").</summary>
    public static void RequirePairs(SentencePairDataset data, string use)
    {
        if (data.Count > 0)
        {
            return;
        }

        var report = data.Report;
        string problem;
        if (report.Lines == 0)
        {
            problem = "the file is empty";
        }
        else if (report.DataRows == 0)
        {
            problem = $"the file has {Plural(report.Lines, "line")} and no data rows (a header only)";
        }
        else
        {
            var shown = string.Join("; ", report.Skipped.Take(3));
            problem = $"all {Plural(report.DataRows, "data row")} are bad and were skipped ({shown}{(report.Skipped.Count > 3 ? "; …" : string.Empty)})";
        }

        throw new DataFormatException(report.Source, $"{problem}; {use} needs at least one sentence pair");
    }

    /// <summary>Throws unless every class index 0 … <paramref name="classLabels"/>.Count − 1 has an example: a classifier
    /// trained on one class learns only to answer it.</summary>
    public static void RequireEveryClass(SentencePairDataset data, IReadOnlyList<string> classLabels, string use)
    {
        RequirePairs(data, use);
        var counts = new int[classLabels.Count];
        foreach (var e in data.Examples)
        {
            var index = (int)e.Label;
            if (index >= 0 && index < counts.Length)
            {
                counts[index]++;
            }
        }

        var missing = Enumerable.Range(0, counts.Length).Where(i => counts[i] == 0).Select(i => $"'{classLabels[i]}'").ToList();
        if (missing.Count == 0)
        {
            return;
        }

        var present = Enumerable.Range(0, counts.Length).Where(i => counts[i] > 0).Select(i => $"{counts[i]} labelled '{classLabels[i]}'");
        throw new DataFormatException(
            data.Report.Source,
            $"no pair has label {string.Join(" or ", missing)} (the {Plural(data.Count, "pair")} used for {use}: {string.Join(", ", present)}); " +
            $"{use} needs examples of every class ({string.Join(", ", classLabels.Select(c => $"'{c}'"))})");
    }

    private static string Plural(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";
}
