using GraphCompiler.Runtime.Data;
using Xunit;

namespace GraphCompiler.Tests.Data;

/// <summary>The transform's other modes: regression labels, inference (no label), single sentences, equal-split
/// truncation, and the truncated-pair count of a load.</summary>
public class TransformModeTests
{
    private const int Cls = 101;
    private const int Sep = 102;

    // Ids looked up in vocab.txt (id = line number − 1).
    private const int The = 1996;
    private const int Cat = 4937;
    private const int Sat = 2938;
    private const int Dog = 3899;
    private const int Ran = 2743;
    private const int Word = 2773;
    private const int Dot = 1012;

    private static SentencePairDataset Load(string text, PairTransformOptions options, TsvOptions? tsv = null, BadRows badRows = BadRows.Throw) =>
        SentencePairDataset.Load(DataFixtures.Tsv(DataFixtures.Utf8(text), tsv ?? new TsvOptions()), badRows, DataFixtures.Transform(options));

    [Fact]
    public void VocabularyIdsUsedHere()
    {
        var v = DataFixtures.Vocabulary.Tokens;
        Assert.Equal(["[CLS]", "[SEP]", "the", "cat", "sat", "dog", "ran", "word", "."], new[] { Cls, Sep, The, Cat, Sat, Dog, Ran, Word, Dot }.Select(i => v[i]));
    }

    [Fact]
    public void Regression_FloatLabels()
    {
        var options = new PairTransformOptions { LabelMode = LabelMode.Regression };
        var data = Load("The cat sat.\tThe dog ran.\t4.25\nThe dog.\tThe cat.\t-0.5e1\nThe cat\tThe dog\t0\n", options);
        Assert.Equal([4.25f, -5f, 0f], data.Examples.Select(e => e.Label));
        Assert.Equal([Cls, The, Cat, Sat, Dot, Sep, The, Dog, Ran, Dot, Sep], data.Examples[0].TokenIds);

        var transform = DataFixtures.Transform(options);
        var plan = new FixedBucketSampler(data.Lengths, [16], 4, shuffle: false).Plan();
        using var batch = Batch.Create(data.Examples, plan.Batches[0], 4, LabelMode.Regression, Cls, Sep, transform.PadId);
        Assert.Equal(TorchSharp.torch.ScalarType.Float32, batch.Label!.dtype);
        Assert.Equal([4.25f, -5f, 0f, 0f], batch.Label.data<float>().ToArray());

        // A label that is not a finite number is a bad row naming its line.
        var e = Assert.Throws<DataFormatException>(() => Load("A.\tB.\t1.5\nA.\tB.\tfour\n", options));
        Assert.Equal(2, e.Line);
        Assert.Contains("label 'four' is not a finite number", e.Message);
        Assert.Equal(2, Assert.Throws<DataFormatException>(() => Load("A.\tB.\t1.5\nA.\tB.\tNaN\n", options)).Line);
    }

    [Fact]
    public void Inference_NoLabelColumn()
    {
        var options = new PairTransformOptions { LabelMode = LabelMode.None };
        var transform = DataFixtures.Transform(options);
        Assert.Equal(2, transform.FieldCount);
        var data = Load("The cat sat.\tThe dog ran.\nThe dog.\tThe cat.\n", options);
        Assert.Equal(2, data.Count);
        Assert.Equal([Cls, The, Cat, Sat, Dot, Sep, The, Dog, Ran, Dot, Sep], data.Examples[0].TokenIds);
        Assert.Equal([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1], data.Examples[0].SegmentIds);
        Assert.All(data.Examples, x => Assert.Equal(0f, x.Label));

        var plan = new FixedBucketSampler(data.Lengths, [16], 2, shuffle: false).Plan();
        using var batch = Batch.Create(data.Examples, plan.Batches[0], 2, LabelMode.None, Cls, Sep, transform.PadId);
        Assert.Null(batch.Label);
        Assert.Equal(new long[] { 2, 16 }, batch.TokenIds.shape);

        // A row with one field is still too short.
        var e = Assert.Throws<DataFormatException>(() => Load("The cat.\tThe dog.\nonly one\n", options));
        Assert.Equal(2, e.Line);
        Assert.Contains("too few fields: found 1, need 2 (sentence a, sentence b)", e.Message);
    }

    [Fact]
    public void SingleSentenceMode()
    {
        var options = new PairTransformOptions { Pair = false, ClassLabels = ["neg", "pos"] };
        var transform = DataFixtures.Transform(options);
        Assert.Equal(2, transform.FieldCount);
        var data = Load("The cat sat.\tpos\nThe dog ran.\tneg\n", options);
        Assert.Equal([Cls, The, Cat, Sat, Dot, Sep], data.Examples[0].TokenIds);
        Assert.Equal([0, 0, 0, 0, 0, 0], data.Examples[0].SegmentIds);
        Assert.Equal(6, data.Examples[0].ValidLength);
        Assert.Equal([1f, 0f], data.Examples.Select(e => e.Label));
        Assert.Equal(0, data.Report.SingleSentencePairs); // single-sentence mode is not a vanished b

        // Truncated to max_len − 2 tokens.
        var cut = Load(string.Join(' ', Enumerable.Repeat("word", 20)) + "\tpos\n", options with { MaxLength = 8 });
        Assert.Equal([Cls, Word, Word, Word, Word, Word, Word, Sep], cut.Examples[0].TokenIds);
        Assert.Equal(1, cut.Report.TruncatedPairs);

        // Inference without pairs: one field.
        var inference = Load("The cat sat.\n", options with { LabelMode = LabelMode.None });
        Assert.Equal([Cls, The, Cat, Sat, Dot, Sep], inference.Examples[0].TokenIds);
    }

    /// <summary>A pair whose sentence b is not empty but has no tokens (control characters, a lone combining mark)
    /// becomes a single sentence and is counted.</summary>
    [Fact]
    public void PairWithATokenlessB_BecomesASingleSentence()
    {
        var data = Load("The cat.\t\u0007\u0301\t1\nThe dog.\tThe cat.\t0\n", new PairTransformOptions());
        Assert.Equal([Cls, The, Cat, Dot, Sep], data.Examples[0].TokenIds);
        Assert.Equal([0, 0, 0, 0, 0], data.Examples[0].SegmentIds);
        Assert.True(data.Examples[0].SingleSentence);
        Assert.False(data.Examples[1].SingleSentence);
        Assert.Equal(1, data.Report.SingleSentencePairs);
        Assert.Contains("1 with an empty sentence b after tokenization", data.Report.ToString());
    }

    /// <summary>Equal split at max_len 11 (8 tokens for a and b): a has 10 tokens, b 2 → b is within its share (4) and
    /// kept whole, a gets 6; a 10, b 10 → 4 each; a 3, b 10 → a kept whole, b gets 5. For two sentences the tutorial
    /// rule cuts exactly as much from each (Truncation_TheTwoRulesCoincideForPairs), so both give these rows.</summary>
    [Theory]
    [InlineData(10, 2, PairTruncation.EqualSplit, 6, 2)]
    [InlineData(10, 10, PairTruncation.EqualSplit, 4, 4)]
    [InlineData(3, 10, PairTruncation.EqualSplit, 3, 5)]
    [InlineData(10, 3, PairTruncation.EqualSplit, 5, 3)]
    [InlineData(10, 3, PairTruncation.LongestFirst, 5, 3)]
    [InlineData(10, 2, PairTruncation.LongestFirst, 6, 2)]
    [InlineData(9, 10, PairTruncation.EqualSplit, 4, 4)]
    [InlineData(9, 10, PairTruncation.LongestFirst, 4, 4)]
    [InlineData(9, 4, PairTruncation.EqualSplit, 4, 4)]
    public void Truncation_ThroughTheTransform(int na, int nb, PairTruncation truncation, int keepA, int keepB)
    {
        var a = string.Join(' ', Enumerable.Repeat("cat", na));
        var b = string.Join(' ', Enumerable.Repeat("dog", nb));
        var e = DataFixtures.Transform(new PairTransformOptions { MaxLength = 11, Truncation = truncation }).Transform("t.tsv", new TsvRow(2, [a, b, "1"]));
        int[] expected = [Cls, .. Enumerable.Repeat(Cat, keepA), Sep, .. Enumerable.Repeat(Dog, keepB), Sep];
        Assert.Equal(expected, e.TokenIds);
        Assert.Equal(keepA + 2, e.SegmentIds.Count(s => s == 0));
        Assert.Equal(keepB + 1, e.SegmentIds.Count(s => s == 1));
        Assert.True(e.Truncated);
    }

    /// <summary>The load report counts the pairs that were cut to fit, under either rule, and says so.</summary>
    [Theory]
    [InlineData(PairTruncation.LongestFirst)]
    [InlineData(PairTruncation.EqualSplit)]
    public void TruncatedPairs_AreCountedInTheReport(PairTruncation truncation)
    {
        var longText = string.Join(' ', Enumerable.Repeat("word", 30));
        var rows = new[]
        {
            $"{longText}\tThe cat.\t1", // cut
            "The cat sat.\tThe dog ran.\t0", // fits
            $"The cat.\t{longText}\t1", // cut
            $"{longText}\t{longText}\t0", // cut
            "The dog.\tThe cat.\t1", // fits
        };
        var data = Load(string.Join('\n', rows) + "\n", new PairTransformOptions { MaxLength = 32, Truncation = truncation });
        Assert.Equal(3, data.Report.TruncatedPairs);
        Assert.Equal([true, false, true, true, false], data.Examples.Select(e => e.Truncated));
        Assert.All(data.Examples, e => Assert.True(e.ValidLength <= 32));
        Assert.Equal(32, data.Examples[3].ValidLength);
        Assert.StartsWith("test.tsv: 5 rows, 3 truncated to fit, 0 with an empty sentence b after tokenization, none skipped", data.Report.ToString());
    }
}
