namespace GraphCompiler.Runtime.Training;

/// <summary>The GLUE metrics, on plain arrays: accuracy, F1 of the positive class 1 (MRPC, QQP), Matthews correlation
/// (CoLA), Pearson and Spearman correlation (STS-B). Degenerate inputs follow scikit-learn / SciPy where they agree on
/// a number: F1 and MCC are 0 when undefined; a correlation with a constant vector is NaN.</summary>
public static class Metrics
{
    public const string Accuracy = "accuracy";
    public const string F1 = "f1";
    public const string Mcc = "mcc";
    public const string Pearson = "pearson";
    public const string Spearman = "spearman";
    public const string Mse = "mse";

    /// <summary>The metric names of a task, first the one used to keep the best epoch by default.</summary>
    public static IReadOnlyList<string> For(TaskKind task) => task == TaskKind.Classification
        ? [Accuracy, F1, Mcc]
        : [Pearson, Spearman, Mse];

    /// <summary>Whether a larger value of <paramref name="metric"/> is better.</summary>
    public static bool HigherIsBetter(string metric) => metric != Mse && metric != "loss";

    public static double AccuracyOf(IReadOnlyList<int> predicted, IReadOnlyList<int> actual)
    {
        CheckLengths(predicted.Count, actual.Count);
        if (predicted.Count == 0)
        {
            return double.NaN;
        }

        var right = 0;
        for (var i = 0; i < predicted.Count; i++)
        {
            right += predicted[i] == actual[i] ? 1 : 0;
        }

        return (double)right / predicted.Count;
    }

    /// <summary>F1 of class <paramref name="positive"/>: 2·TP / (2·TP + FP + FN); 0 when there are no positives at all.</summary>
    public static double F1Of(IReadOnlyList<int> predicted, IReadOnlyList<int> actual, int positive = 1)
    {
        var (tp, fp, fn, _) = Confusion(predicted, actual, positive);
        var denominator = (2.0 * tp) + fp + fn;
        return denominator == 0 ? 0 : 2.0 * tp / denominator;
    }

    /// <summary>Matthews correlation of a binary task: (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)); 0 when a
    /// factor is 0.</summary>
    public static double MccOf(IReadOnlyList<int> predicted, IReadOnlyList<int> actual, int positive = 1)
    {
        var (tp, fp, fn, tn) = Confusion(predicted, actual, positive);
        var denominator = Math.Sqrt((double)(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
        return denominator == 0 ? 0 : (((double)tp * tn) - ((double)fp * fn)) / denominator;
    }

    public static double PearsonOf(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        CheckLengths(x.Count, y.Count);
        if (x.Count < 2)
        {
            return double.NaN;
        }

        double mx = x.Average(), my = y.Average();
        double sxy = 0, sxx = 0, syy = 0;
        for (var i = 0; i < x.Count; i++)
        {
            var dx = x[i] - mx;
            var dy = y[i] - my;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }

        return sxx == 0 || syy == 0 ? double.NaN : sxy / Math.Sqrt(sxx * syy);
    }

    /// <summary>Pearson correlation of the ranks, ties getting their average rank (SciPy's <c>spearmanr</c>).</summary>
    public static double SpearmanOf(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        CheckLengths(x.Count, y.Count);
        return PearsonOf(Ranks(x), Ranks(y));
    }

    public static double MseOf(IReadOnlyList<double> predicted, IReadOnlyList<double> actual)
    {
        CheckLengths(predicted.Count, actual.Count);
        if (predicted.Count == 0)
        {
            return double.NaN;
        }

        var sum = 0.0;
        for (var i = 0; i < predicted.Count; i++)
        {
            var d = predicted[i] - actual[i];
            sum += d * d;
        }

        return sum / predicted.Count;
    }

    /// <summary>Average ranks (1-based), ties sharing the mean of the ranks they span.</summary>
    public static double[] Ranks(IReadOnlyList<double> values)
    {
        var order = Enumerable.Range(0, values.Count).OrderBy(i => values[i]).ThenBy(i => i).ToArray();
        var ranks = new double[values.Count];
        for (var start = 0; start < order.Length;)
        {
            var end = start;
            while (end + 1 < order.Length && values[order[end + 1]] == values[order[start]])
            {
                end++;
            }

            var rank = ((start + end) / 2.0) + 1;
            for (var k = start; k <= end; k++)
            {
                ranks[order[k]] = rank;
            }

            start = end + 1;
        }

        return ranks;
    }

    /// <summary>All metrics of a classification task.</summary>
    public static Dictionary<string, double> Classification(IReadOnlyList<int> predicted, IReadOnlyList<int> actual) => new(StringComparer.Ordinal)
    {
        [Accuracy] = AccuracyOf(predicted, actual),
        [F1] = F1Of(predicted, actual),
        [Mcc] = MccOf(predicted, actual),
    };

    /// <summary>The metrics of <see cref="Classification"/> that are undefined (0/0) for these inputs, one sentence each
    /// saying why and what is reported instead; empty when every metric is defined.</summary>
    public static IReadOnlyList<string> ClassificationNotes(IReadOnlyList<int> predicted, IReadOnlyList<int> actual, int positive = 1)
    {
        var (tp, fp, fn, tn) = Confusion(predicted, actual, positive);
        var notes = new List<string>();
        if (predicted.Count == 0)
        {
            notes.Add("accuracy: undefined, there are no examples");
        }

        if ((2 * tp) + fp + fn == 0)
        {
            notes.Add($"f1: undefined (no label and no prediction is the positive class {positive}: 0/0), reported as 0");
        }

        if ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) == 0)
        {
            var why = tp + fn == 0 || tn + fp == 0 ? "the labels are all one class" : "the predictions are all one class";
            notes.Add($"mcc: undefined ({why}: 0/0), reported as 0");
        }

        return notes;
    }

    /// <summary>All metrics of a regression task.</summary>
    public static Dictionary<string, double> Regression(IReadOnlyList<double> predicted, IReadOnlyList<double> actual) => new(StringComparer.Ordinal)
    {
        [Pearson] = PearsonOf(predicted, actual),
        [Spearman] = SpearmanOf(predicted, actual),
        [Mse] = MseOf(predicted, actual),
    };

    private static (long Tp, long Fp, long Fn, long Tn) Confusion(IReadOnlyList<int> predicted, IReadOnlyList<int> actual, int positive)
    {
        CheckLengths(predicted.Count, actual.Count);
        long tp = 0, fp = 0, fn = 0, tn = 0;
        for (var i = 0; i < predicted.Count; i++)
        {
            var p = predicted[i] == positive;
            var a = actual[i] == positive;
            if (p && a)
            {
                tp++;
            }
            else if (p)
            {
                fp++;
            }
            else if (a)
            {
                fn++;
            }
            else
            {
                tn++;
            }
        }

        return (tp, fp, fn, tn);
    }

    private static void CheckLengths(int a, int b)
    {
        if (a != b)
        {
            throw new ArgumentException($"predictions ({a}) and labels ({b}) differ in length");
        }
    }
}
