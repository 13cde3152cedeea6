using Microsoft.ML.Tokenizers;

namespace GraphCompiler.Runtime.Data;

/// <summary>Sentence → WordPiece ids with the Microsoft.ML.Tokenizers <see cref="BertTokenizer"/> that
/// <see cref="Text.Vocabulary.CreateTokenizer"/> configures (BERT's punctuation split, see
/// <see cref="Text.Vocabulary.BertPreTokenization"/>). One departure of the library's normalizer from BERT's
/// <c>_clean_text</c> is corrected here: it removes tab, line feed and carriage return as control characters
/// ("a\tb" → "ab"), where BERT treats them as white space ("a", "b").</summary>
public static class BertText
{
    /// <summary>The ids of <paramref name="text"/> without special tokens.</summary>
    public static IReadOnlyList<int> Encode(BertTokenizer tokenizer, string text)
    {
        if (text.AsSpan().IndexOfAny('\t', '\n', '\r') >= 0)
        {
            text = text.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ');
        }

        return tokenizer.EncodeToIds(text, addSpecialTokens: false);
    }
}
