using System.Text;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.Text;
using Xunit;

namespace GraphCompiler.Tests.Data;

/// <summary>vocab.txt files that cannot be a BERT vocabulary: each is a <see cref="DataFormatException"/> naming the
/// file (and the line, when one line is at fault), never an exception from inside the tokenizer library. Cases found by
/// coverage-guided fuzzing (scripts/fuzz.sh vocab), minimized: Microsoft.ML.Tokenizers threw KeyNotFoundException for
/// a missing [SEP] / [MASK], ArgumentException for a missing [UNK] or a token listed twice.</summary>
public class VocabularyFileTests
{
    private const string Good = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n##s\n";

    private static Vocabulary Read(string text) => new("vocab.txt", Encoding.UTF8.GetBytes(text));

    [Fact]
    public void GoodSmallVocabularyTokenizes()
    {
        var tokenizer = Read(Good).CreateTokenizer();
        Assert.Equal(new[] { 5, 6 }, BertText.Encode(tokenizer, "thes"));
    }

    [Theory]
    [InlineData("[SEP]")]
    [InlineData("[MASK]")]
    [InlineData("[UNK]")]
    [InlineData("[PAD]")]
    [InlineData("[CLS]")]
    public void Fuzz_MissingSpecialToken(string token)
    {
        var e = Assert.Throws<DataFormatException>(() => Read(Good.Replace(token + "\n", "")));
        Assert.Equal("vocab.txt", e.File);
        Assert.StartsWith("vocab.txt: ", e.Message, StringComparison.Ordinal);
        Assert.Contains($"lacks {token} (", e.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Fuzz_TokenListedTwice()
    {
        var e = Assert.Throws<DataFormatException>(() => Read(Good + "the\r\n"));
        Assert.Equal(8, e.Line);
        Assert.StartsWith("vocab.txt, line 8: ", e.Message, StringComparison.Ordinal);
        Assert.Contains("'the' is listed twice (first on line 6)", e.Problem, StringComparison.Ordinal);
    }

    /// <summary>The library splits lines at a lone \r too (StreamReader.ReadLine): "qq\rthe" is two tokens, the second a
    /// repeat it threw ArgumentException for.</summary>
    [Fact]
    public void Fuzz_TokenRepeatedAfterALoneCarriageReturn()
    {
        var e = Assert.Throws<DataFormatException>(() => Read(Good + "qq\rthe\n"));
        Assert.Equal(9, e.Line);
        Assert.Contains("'the' is listed twice (first on line 6)", e.Problem, StringComparison.Ordinal);
    }
}
