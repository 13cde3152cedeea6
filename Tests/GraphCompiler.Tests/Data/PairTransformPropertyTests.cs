using CsCheck;
using GraphCompiler.Runtime.Data;
using Xunit;

namespace GraphCompiler.Tests.Data;

/// <summary>Property tests of the pair transform and of the truncation rules, over random sentences (words drawn from
/// the vocabulary, or random ASCII + Unicode text) and random max_len.</summary>
public class PairTransformPropertyTests
{
    private const int Iterations = 1000;

    /// <summary>A sentence of 1–90 words drawn from the vocabulary (ids ≥ 999: past [unusedN] and the specials; a
    /// "##piece" word comes out as "#", "#", "piece").</summary>
    private static readonly Gen<string> VocabSentence =
        Gen.Int[999, 30521].Array[1, 90].Select(ids => string.Join(' ', ids.Select(i => DataFixtures.Vocabulary.Tokens[i])));

    /// <summary>Random text from ASCII, accented and upper-case letters, combining marks, CJK, symbols, an emoji (a
    /// surrogate pair), white space and a control character: it may tokenize to nothing.</summary>
    private static readonly Gen<string> RandomText =
        Gen.OneOfConst(
                "a", "Z", "q", "7", "0", "$", "+", "<", "|", "~", "_", "\"", "'", ".", ",", "-", "[SEP]", "[CLS]",
                "é", "Ä", "ß", "İ", "ñ", "e\u0301", "\u0308", "中", "文", "€", "£", "½", "´", "😀", "\u00A0", "\u0007",
                " ", " ", "\t", "Word", "naïve", "CAFÉ", "Straße", "ﬁ")
            .Array[1, 120]
            .Select(string.Concat);

    private static readonly Gen<string> Sentence = Gen.Frequency((3, VocabSentence), (2, RandomText));

    private static readonly Gen<PairTruncation> Truncation = Gen.OneOfConst(PairTruncation.LongestFirst, PairTruncation.EqualSplit);

    [Fact]
    public void PairTransform_StructureHoldsForRandomPairs()
    {
        Gen.Select(Sentence, Sentence, Gen.Int[8, 128], Truncation, Gen.Bool).Sample(
            (a, b, maxLen, truncation, pad) =>
            {
                var transform = DataFixtures.Transform(new PairTransformOptions { MaxLength = maxLen, Truncation = truncation, PadToMaxLength = pad });
                var aIds = BertText.Encode(DataFixtures.Tokenizer, a).ToList();
                var bIds = BertText.Encode(DataFixtures.Tokenizer, b).ToList();
                var row = new TsvRow(7, [a, b, "1"]);
                if (string.IsNullOrWhiteSpace(a) || string.IsNullOrWhiteSpace(b) || aIds.Count == 0)
                {
                    Assert.Throws<DataFormatException>(() => transform.Transform("p.tsv", row));
                    return;
                }

                var e = transform.Transform("p.tsv", row);
                var single = bIds.Count == 0;
                Assert.Equal(single, e.SingleSentence);
                CheckStructure(transform, e, maxLen, pad, pair: !single);

                // The kept tokens are prefixes of each sentence's tokens, cut as the reference rule says.
                var (keepA, keepB) = single
                    ? (Math.Min(aIds.Count, maxLen - 2), 0)
                    : truncation == PairTruncation.LongestFirst
                        ? ReferenceLongestFirst(aIds.Count, bIds.Count, maxLen - 3)
                        : ReferenceEqualSplit(aIds.Count, bIds.Count, maxLen - 3);
                Assert.Equal(keepA != aIds.Count || keepB != bIds.Count, e.Truncated);
                Assert.Equal(aIds.Take(keepA), e.TokenIds.Skip(1).Take(keepA));
                if (!single)
                {
                    Assert.Equal(bIds.Take(keepB), e.TokenIds.Skip(keepA + 2).Take(keepB));
                }

                Assert.Equal(keepA + keepB + (single ? 2 : 3), e.ValidLength);
            },
            iter: Iterations);
    }

    [Fact]
    public void SingleSentenceMode_StructureHoldsForRandomSentences()
    {
        Gen.Select(Sentence, Gen.Int[8, 128], Gen.Bool).Sample(
            (a, maxLen, pad) =>
            {
                var transform = DataFixtures.Transform(new PairTransformOptions { MaxLength = maxLen, Pair = false, PadToMaxLength = pad });
                var aIds = BertText.Encode(DataFixtures.Tokenizer, a);
                var row = new TsvRow(3, [a, "0"]);
                if (string.IsNullOrWhiteSpace(a) || aIds.Count == 0)
                {
                    Assert.Throws<DataFormatException>(() => transform.Transform("s.tsv", row));
                    return;
                }

                var e = transform.Transform("s.tsv", row);
                Assert.False(e.SingleSentence); // only a pair whose b vanished is counted as one
                CheckStructure(transform, e, maxLen, pad, pair: false);
                Assert.Equal(Math.Min(aIds.Count, maxLen - 2) + 2, e.ValidLength);
                Assert.Equal(aIds.Count > maxLen - 2, e.Truncated);
                Assert.Equal(aIds.Take(maxLen - 2), e.TokenIds.Skip(1).Take(e.ValidLength - 2));
            },
            iter: Iterations);
    }

    /// <summary>The truncation rules on token lists: the result fits, is a prefix of each list, leaves a fitting pair
    /// alone, and equals the reference (GluonNLP's loops, written here independently).</summary>
    [Fact]
    public void Truncation_FitsAndMatchesTheReference()
    {
        Gen.Select(Gen.Int[0, 200], Gen.Int[0, 200], Gen.Int[0, 253], Truncation).Sample(
            (na, nb, maxTokens, truncation) =>
            {
                var a = Enumerable.Range(1000, na).ToList();
                var b = Enumerable.Range(5000, nb).ToList();
                var truncated = truncation == PairTruncation.LongestFirst
                    ? SentencePairTransform.TruncateLongestFirst(a, b, maxTokens)
                    : SentencePairTransform.TruncateEqualSplit(a, b, maxTokens);
                Assert.True(a.Count + b.Count <= maxTokens);
                Assert.Equal(na + nb > maxTokens, truncated);
                Assert.Equal(Enumerable.Range(1000, a.Count), a);
                Assert.Equal(Enumerable.Range(5000, b.Count), b);
                if (truncated)
                {
                    Assert.Equal(maxTokens, a.Count + b.Count); // nothing is cut beyond what is needed
                }

                var expected = truncation == PairTruncation.LongestFirst ? ReferenceLongestFirst(na, nb, maxTokens) : ReferenceEqualSplit(na, nb, maxTokens);
                Assert.Equal(expected, (a.Count, b.Count));
            },
            iter: 2000);
    }

    /// <summary>GluonNLP's equal split is written for any number of sequences; for two it cuts exactly what popping
    /// from the longer (b on a tie) cuts: a shorter sentence within half the room is kept whole either way, and
    /// otherwise both end at half, a with the odd token. Checked on every pair of lengths up to 150 and room up to 253.</summary>
    [Fact]
    public void Truncation_TheTwoRulesCoincideForPairs()
    {
        for (var na = 0; na <= 150; na++)
        {
            for (var nb = 0; nb <= 150; nb++)
            {
                for (var max = 0; max <= 253; max += 3)
                {
                    var expected = ReferenceEqualSplit(na, nb, max);
                    var actual = ReferenceLongestFirst(na, nb, max);
                    if (expected != actual)
                    {
                        Assert.Fail($"|a| {na}, |b| {nb}, room {max}: equal split {expected}, longest first {actual}");
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(10, 10, 5, 3, 2)] // tie: b pops first, then a, then b, … down to 3 + 2
    [InlineData(10, 3, 5, 3, 2)] // a pops to 3, the tie then pops b
    [InlineData(3, 10, 5, 3, 2)]
    [InlineData(10, 1, 5, 4, 1)]
    [InlineData(1, 10, 5, 1, 4)]
    [InlineData(4, 4, 8, 4, 4)] // fits: untouched
    public void LongestFirst_HandChecked(int na, int nb, int max, int keepA, int keepB)
    {
        Assert.Equal((keepA, keepB), ReferenceLongestFirst(na, nb, max));
        var a = Enumerable.Range(0, na).ToList();
        var b = Enumerable.Range(0, nb).ToList();
        SentencePairTransform.TruncateLongestFirst(a, b, max);
        Assert.Equal((keepA, keepB), (a.Count, b.Count));
    }

    [Theory]
    [InlineData(10, 10, 5, 3, 2)] // both over the share: a gets the odd token
    [InlineData(10, 2, 5, 3, 2)] // b fits its share (2 ≤ 5 / 2): kept whole, a gets the rest
    [InlineData(2, 10, 6, 2, 4)]
    [InlineData(3, 10, 5, 3, 2)] // a (3) is over the share 2: both cut to the share, a the odd one
    [InlineData(2, 2, 3, 2, 1)] // both over the share 1: a gets the odd token
    [InlineData(1, 1, 2, 1, 1)] // fits: untouched
    public void EqualSplit_HandChecked(int na, int nb, int max, int keepA, int keepB)
    {
        Assert.Equal((keepA, keepB), ReferenceEqualSplit(na, nb, max));
        var a = Enumerable.Range(0, na).ToList();
        var b = Enumerable.Range(0, nb).ToList();
        SentencePairTransform.TruncateEqualSplit(a, b, max);
        Assert.Equal((keepA, keepB), (a.Count, b.Count));
    }

    /// <summary>[CLS] first and only once, [SEP] once (single) or twice (pair) and the last valid token, segment ids
    /// 0…0 then 1…1 switching once right after the first [SEP] (pairs) or never (single), valid length = the count of
    /// non-[PAD] ids, padding = [PAD] with segment 0, length ≤ max_len.</summary>
    private static void CheckStructure(SentencePairTransform t, EncodedExample e, int maxLen, bool pad, bool pair)
    {
        Assert.Equal(e.TokenIds.Length, e.SegmentIds.Length);
        Assert.True(e.ValidLength <= maxLen);
        Assert.Equal(pad ? maxLen : e.ValidLength, e.TokenIds.Length);
        Assert.Equal(e.ValidLength, e.TokenIds.Count(i => i != t.PadId));
        Assert.Equal(t.ClsId, e.TokenIds[0]);
        Assert.Equal(1, e.TokenIds.Count(i => i == t.ClsId));
        Assert.Equal(pair ? 2 : 1, e.TokenIds.Count(i => i == t.SepId));
        Assert.Equal(t.SepId, e.TokenIds[e.ValidLength - 1]);
        Assert.All(e.TokenIds.Skip(e.ValidLength), id => Assert.Equal(t.PadId, id));
        Assert.All(e.SegmentIds.Skip(e.ValidLength), s => Assert.Equal(0, s));
        var valid = e.SegmentIds.Take(e.ValidLength).ToArray();
        var switches = valid.Zip(valid.Skip(1)).Count(p => p.First != p.Second);
        Assert.Equal(pair ? 1 : 0, switches);
        Assert.All(valid, s => Assert.InRange(s, 0, 1));
        Assert.Equal(0, valid[0]);
        if (pair)
        {
            var firstSep = Array.IndexOf(e.TokenIds, t.SepId);
            Assert.All(valid.Take(firstSep + 1), s => Assert.Equal(0, s));
            Assert.All(valid.Skip(firstSep + 1), s => Assert.Equal(1, s));
            Assert.True(firstSep >= 2); // sentence a keeps at least one token
            Assert.True(e.ValidLength - firstSep >= 2); // and so does b
        }
    }

    /// <summary>GluonNLP's tutorial <c>_truncate_seq_pair</c> on lengths: pop from the longer, from b on a tie.</summary>
    private static (int A, int B) ReferenceLongestFirst(int na, int nb, int max)
    {
        while (na + nb > max)
        {
            if (na > nb)
            {
                na--;
            }
            else
            {
                nb--;
            }
        }

        return (na, nb);
    }

    /// <summary>GluonNLP's <c>truncate_seqs_equal</c> for any number of sequences, on lengths: repeatedly, the shortest
    /// unfixed sequence (the first on a tie) that fits the equal share of what is left is kept whole; once none does,
    /// every unfixed sequence gets the share, the first ones one more for the remainder.</summary>
    private static (int A, int B) ReferenceEqualSplit(int na, int nb, int max)
    {
        int[] lens = [na, nb];
        if (lens.Sum() <= max)
        {
            return (na, nb);
        }

        var fixedLen = new bool[lens.Length];
        var left = max;
        while (true)
        {
            var open = Enumerable.Range(0, lens.Length).Where(i => !fixedLen[i]).ToList();
            var argmin = open.OrderBy(i => lens[i]).ThenBy(i => i).First();
            var quotient = left / open.Count;
            var remainder = left % open.Count;
            if (lens[argmin] <= quotient)
            {
                fixedLen[argmin] = true;
                left -= lens[argmin];
                continue;
            }

            for (var k = 0; k < open.Count; k++)
            {
                lens[open[k]] = quotient + (k < remainder ? 1 : 0);
            }

            return (lens[0], lens[1]);
        }
    }
}
