using Microsoft.ML.Tokenizers;

namespace GraphCompiler.Runtime.Data;

/// <summary>What the last field of a row is.</summary>
public enum LabelMode
{
    /// <summary>A class label, mapped to its index in <see cref="PairTransformOptions.ClassLabels"/> (int64).</summary>
    Classification,
    /// <summary>A number parsed with the invariant culture (float32), e.g. STS-B scores.</summary>
    Regression,
    /// <summary>No label field: inference.</summary>
    None,
}

/// <summary>How a pair longer than max_len − 3 tokens is cut.</summary>
public enum PairTruncation
{
    /// <summary>GluonNLP's tutorial transform (<c>_truncate_seq_pair</c>): pop the last token of the longer sentence,
    /// of b on a tie, until the pair fits.</summary>
    LongestFirst,
    /// <summary>GluonNLP's full fine-tuning script (<c>truncate_seqs_equal</c>): a sentence shorter than its equal share
    /// is kept whole and the other gets the rest; otherwise both get an equal share, a the odd token. For two sentences
    /// this cuts exactly what <see cref="LongestFirst"/> cuts (the tests check every pair of lengths); the rules differ
    /// only for more than two sequences, which this transform does not make.</summary>
    EqualSplit,
}

/// <summary>The arguments of GluonNLP's <c>BERTDatasetTransform</c>.</summary>
public sealed record PairTransformOptions
{
    /// <summary>The longest sequence produced, special tokens included.</summary>
    public int MaxLength { get; init; } = 128;

    /// <summary>Rows are [a, b, label] when true, [a, label] when false (label absent under <see cref="LabelMode.None"/>).</summary>
    public bool Pair { get; init; } = true;

    public LabelMode LabelMode { get; init; } = LabelMode.Classification;

    public IReadOnlyList<string> ClassLabels { get; init; } = ["0", "1"];

    public PairTruncation Truncation { get; init; } = PairTruncation.LongestFirst;

    /// <summary>Pad every example to <see cref="MaxLength"/> with [PAD] (GluonNLP's <c>pad=True</c>). Off by default:
    /// the batcher pads to the model's static bucket instead.</summary>
    public bool PadToMaxLength { get; init; }
}

/// <summary>One example as the model consumes it (before padding to a bucket). <see cref="Label"/> is the class index,
/// the regression target, or 0 in inference mode.</summary>
public sealed record EncodedExample(int Line, int[] TokenIds, int[] SegmentIds, int ValidLength, float Label, bool Truncated, bool SingleSentence);

/// <summary>GluonNLP's <c>BERTDatasetTransform</c>: tokenize, truncate, [CLS] a [SEP] b [SEP], segment ids 0 for
/// [CLS] a [SEP] and 1 for b [SEP], valid length, label mapping. A raw sentence that is empty (or only white space) is
/// a bad row; a sentence b that is not empty but has no tokens (only control characters, say) makes the pair a single
/// sentence, counted in <see cref="EncodedExample.SingleSentence"/>. Thread-safe.</summary>
public sealed class SentencePairTransform
{
    private readonly BertTokenizer _tokenizer;
    private readonly Dictionary<string, int> _classes;

    public SentencePairTransform(BertTokenizer tokenizer, PairTransformOptions? options = null)
    {
        _tokenizer = tokenizer;
        Options = options ?? new PairTransformOptions();
        var minimum = Options.Pair ? 3 : 2;
        if (Options.MaxLength < minimum)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"MaxLength {Options.MaxLength} leaves no room for the special tokens: need at least {minimum}");
        }

        if (Options.LabelMode == LabelMode.Classification && Options.ClassLabels.Count == 0)
        {
            throw new ArgumentException("classification needs at least one class label", nameof(options));
        }

        _classes = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < Options.ClassLabels.Count; i++)
        {
            if (!_classes.TryAdd(Options.ClassLabels[i], i))
            {
                throw new ArgumentException($"class label '{Options.ClassLabels[i]}' is listed twice", nameof(options));
            }
        }
    }

    public PairTransformOptions Options { get; }

    public int PadId => _tokenizer.PaddingTokenId;

    public int ClsId => _tokenizer.ClassificationTokenId;

    public int SepId => _tokenizer.SeparatorTokenId;

    /// <summary>The fields a row must have: sentences, then the label unless in inference mode.</summary>
    public int FieldCount => (Options.Pair ? 2 : 1) + (Options.LabelMode == LabelMode.None ? 0 : 1);

    /// <summary>Encodes a row; a bad row throws <see cref="DataFormatException"/> naming <paramref name="source"/> and
    /// the row's line.</summary>
    public EncodedExample Transform(string source, TsvRow row)
    {
        var fields = row.Fields;
        if (fields.Length < FieldCount)
        {
            throw new DataFormatException(source, row.Line, $"too few fields: found {fields.Length}, need {FieldCount} ({Describe()})");
        }

        var label = ParseLabel(source, row.Line, fields);
        var a = Tokenize(source, row.Line, fields[0], "a");
        if (a.Count == 0)
        {
            throw new DataFormatException(source, row.Line, "sentence a has no tokens (only control or zero-width characters)");
        }

        List<int>? b = null;
        var single = false;
        if (Options.Pair)
        {
            b = Tokenize(source, row.Line, fields[1], "b");
            if (b.Count == 0)
            {
                b = null;
                single = true;
            }
        }

        var truncated = b is null ? TruncateSingle(a, Options.MaxLength - 2) : Options.Truncation == PairTruncation.LongestFirst
            ? TruncateLongestFirst(a, b, Options.MaxLength - 3)
            : TruncateEqualSplit(a, b, Options.MaxLength - 3);
        return Build(row.Line, a, b, label, truncated, single);
    }

    /// <summary>GluonNLP's <c>_truncate_seq_pair</c>. Returns whether anything was removed.</summary>
    public static bool TruncateLongestFirst(List<int> a, List<int> b, int maxTokens)
    {
        var truncated = false;
        while (a.Count + b.Count > maxTokens)
        {
            var longer = a.Count > b.Count ? a : b;
            longer.RemoveAt(longer.Count - 1);
            truncated = true;
        }

        return truncated;
    }

    /// <summary>GluonNLP's <c>truncate_seqs_equal</c> for two sequences. Returns whether anything was removed.</summary>
    public static bool TruncateEqualSplit(List<int> a, List<int> b, int maxTokens)
    {
        if (a.Count + b.Count <= maxTokens)
        {
            return false;
        }

        var shorter = Math.Min(a.Count, b.Count);
        int keepA, keepB;
        if (shorter <= maxTokens / 2)
        {
            // The shorter one fits its share: keep it whole, the other gets the rest.
            keepA = a.Count <= b.Count ? a.Count : maxTokens - b.Count;
            keepB = maxTokens - keepA;
        }
        else
        {
            keepA = (maxTokens / 2) + (maxTokens % 2);
            keepB = maxTokens / 2;
        }

        a.RemoveRange(keepA, a.Count - keepA);
        b.RemoveRange(keepB, b.Count - keepB);
        return true;
    }

    private static bool TruncateSingle(List<int> a, int maxTokens)
    {
        if (a.Count <= maxTokens)
        {
            return false;
        }

        a.RemoveRange(maxTokens, a.Count - maxTokens);
        return true;
    }

    private EncodedExample Build(int line, List<int> a, List<int>? b, float label, bool truncated, bool single)
    {
        var valid = a.Count + 2 + (b is null ? 0 : b.Count + 1);
        var length = Options.PadToMaxLength ? Options.MaxLength : valid;
        var ids = new int[length];
        var types = new int[length];
        var p = 0;
        ids[p++] = ClsId;
        foreach (var t in a)
        {
            ids[p++] = t;
        }

        ids[p++] = SepId;
        if (b is not null)
        {
            var bStart = p;
            foreach (var t in b)
            {
                ids[p++] = t;
            }

            ids[p++] = SepId;
            types.AsSpan(bStart, p - bStart).Fill(1);
        }

        if (PadId != 0)
        {
            ids.AsSpan(p).Fill(PadId);
        }

        return new EncodedExample(line, ids, types, valid, label, truncated, single);
    }

    private List<int> Tokenize(string source, int line, string text, string which)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new DataFormatException(source, line, $"sentence {which} is empty");
        }

        var ids = BertText.Encode(_tokenizer, text);
        var list = new List<int>(ids.Count + 1);
        list.AddRange(ids);
        return list;
    }

    private float ParseLabel(string source, int line, string[] fields)
    {
        var field = Options.Pair ? 2 : 1;
        switch (Options.LabelMode)
        {
            case LabelMode.Classification:
                var text = fields[field];
                if (!_classes.TryGetValue(text, out var index))
                {
                    throw new DataFormatException(source, line, $"label '{text}' is not one of the class labels [{string.Join(", ", Options.ClassLabels.Select(c => $"'{c}'"))}]");
                }

                return index;
            case LabelMode.Regression:
                if (!float.TryParse(fields[field], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) || !float.IsFinite(value))
                {
                    throw new DataFormatException(source, line, $"label '{fields[field]}' is not a finite number (regression)");
                }

                return value;
            default:
                return 0;
        }
    }

    private string Describe() => (Options.Pair, Options.LabelMode) switch
    {
        (true, LabelMode.None) => "sentence a, sentence b",
        (true, _) => "sentence a, sentence b, label",
        (false, LabelMode.None) => "sentence",
        (false, _) => "sentence, label",
    };
}
