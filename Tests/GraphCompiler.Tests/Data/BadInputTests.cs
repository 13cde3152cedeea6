using GraphCompiler.Runtime.Data;
using Xunit;

namespace GraphCompiler.Tests.Data;

/// <summary>Every bad row is an error naming file, line and problem, or, when skipping, a reported skip.</summary>
public class BadInputTests
{
    private const string Header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n";

    private static SentencePairDataset Load(string text, BadRows mode, byte[]? raw = null) =>
        SentencePairDataset.Load(DataFixtures.Tsv(raw ?? DataFixtures.Utf8(text, bom: true), SentencePairDataset.MrpcTsv with { BadRows = BadRows.Skip }), mode, DataFixtures.Transform());

    [Theory]
    [InlineData(Header + "1\t1\t2\tGood \"quoted\" one.\tAnother.\n1\t1\t2\tonly four\n", 3, "too few fields")]
    [InlineData(Header + "1\t1\t2\tA.\tB.\n2\t1\t2\tA.\tB.\n", 3, "label '2' is not one of the class labels")]
    [InlineData(Header + "1\t1\t2\tA.\t \n", 2, "sentence b is empty")]
    [InlineData(Header + "1\t1\t2\t\tB.\n", 2, "sentence a is empty")]
    public void BadRow_ErrorNamesFileLineAndProblem(string text, int line, string problem)
    {
        var e = Assert.Throws<DataFormatException>(() => Load(text, BadRows.Throw));
        Assert.Equal("test.tsv", e.File);
        Assert.Equal(line, e.Line);
        Assert.Contains(problem, e.Message);
        Assert.StartsWith($"test.tsv, line {line}: ", e.Message);

        var skipped = Load(text, BadRows.Skip);
        Assert.Equal(line, Assert.Single(skipped.Report.Skipped).Line);
        Assert.Contains("1 skipped", skipped.Report.ToString());
    }

    [Fact]
    public void InvalidUtf8_ErrorNamesTheLine()
    {
        byte[] raw = [.. DataFixtures.Utf8(Header + "1\t1\t2\tA.\tB.\n1\t1\t2\tbad "), 0xC3, 0x28, .. DataFixtures.Utf8(".\tB.\r\n1\t1\t2\tA.\tB.")];
        var e = Assert.Throws<DataFormatException>(() => Load(string.Empty, BadRows.Throw, raw));
        Assert.Equal(3, e.Line);
        Assert.Contains("invalid UTF-8", e.Message);
        var data = Load(string.Empty, BadRows.Skip, raw);
        Assert.Equal([2, 4], data.Examples.Select(x => x.Line));
        Assert.Equal(3, Assert.Single(data.Report.Skipped).Line);
    }

    [Fact]
    public void LongPairs_AreTruncatedAndCounted()
    {
        var words = string.Join(' ', Enumerable.Repeat("word", 100));
        var data = SentencePairDataset.Load(
            DataFixtures.Tsv(DataFixtures.Utf8(Header + $"1\t1\t2\t{words}\t{words}\n0\t1\t2\tShort.\tShort.\n"), SentencePairDataset.MrpcTsv),
            BadRows.Throw,
            DataFixtures.Transform(new PairTransformOptions { MaxLength = 64 }));
        Assert.Equal(1, data.Report.TruncatedPairs);
        Assert.Equal(64, data.Examples[0].ValidLength);
        Assert.Equal(31, data.Examples[0].SegmentIds.Count(s => s == 1)); // room 61: a keeps 31, b 30 (b pops first on a tie); segment 1 = b + [SEP]
    }
}
