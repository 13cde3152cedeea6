using System.Buffers;
using Microsoft.ML.Tokenizers;

namespace GraphCompiler.Runtime.Data;

/// <summary>Sentence → WordPiece ids with Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>, corrected where it
/// departs from BERT's basic tokenizer. Found by the agreement test against FastBertTokenizer on MRPC: version 2.0.1
/// drops the ASCII symbols <c>$ + &lt; = &gt; ^ ` | ~</c> (Unicode categories Sc/Sm/Sk) when they touch a word
/// ("$5" → "5"; 778 of MRPC's 8,152 sentences lost a "$" or the like), whereas BERT (Google, HF, GluonNLP) treats every
/// ASCII non-alphanumeric character as punctuation and splits it into its own token ("$5" → "$", "5"). </summary>
public static class BertText
{
    private static readonly SearchValues<char> AsciiSymbols = SearchValues.Create("$+<=>^`|~");

    /// <summary>The ids of <paramref name="text"/> without special tokens: the library's ids for the text between the
    /// symbols it drops, and each such symbol's own vocabulary id in its place.</summary>
    public static IReadOnlyList<int> Encode(BertTokenizer tokenizer, string text)
    {
        if (text.AsSpan().IndexOfAny(AsciiSymbols) < 0)
        {
            return tokenizer.EncodeToIds(text, addSpecialTokens: false);
        }

        var ids = new List<int>();
        var start = 0;
        for (var i = 0; i <= text.Length; i++)
        {
            if (i < text.Length && !AsciiSymbols.Contains(text[i]))
            {
                continue;
            }

            if (i > start)
            {
                ids.AddRange(tokenizer.EncodeToIds(text[start..i], addSpecialTokens: false));
            }

            if (i < text.Length)
            {
                // Without pre-tokenization the library looks the lone symbol up as a word ("$" → its id, else [UNK]).
                ids.AddRange(tokenizer.EncodeToIds(text[i].ToString(), addSpecialTokens: false, considerPreTokenization: false, considerNormalization: false));
            }

            start = i + 1;
        }

        return ids;
    }
}
