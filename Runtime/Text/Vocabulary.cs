using Microsoft.ML.Tokenizers;

namespace GraphCompiler.Runtime.Text;

/// <summary>A WordPiece vocabulary (one token a line, id = line number) as a model came with it.</summary>
public sealed class Vocabulary
{
    private readonly byte[] _text;

    public Vocabulary(string source, byte[] vocabText, bool lowerCase = true)
    {
        Source = source;
        _text = vocabText;
        LowerCase = lowerCase;
        using var reader = new StreamReader(new MemoryStream(vocabText));
        Tokens = reader.ReadToEnd().Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToList();
    }

    public static Vocabulary FromFile(string path, bool lowerCase = true) => new(path, File.ReadAllBytes(path), lowerCase);

    public string Source { get; }

    public bool LowerCase { get; }

    public IReadOnlyList<string> Tokens { get; }

    public int Count => Tokens.Count;

    /// <summary>GluonNLP's and Google BERT's <c>max_input_chars_per_word</c>: a longer word becomes [UNK]
    /// (Microsoft.ML.Tokenizers defaults to 100, HF's tokenizer too; the reproduced tutorial uses 200).</summary>
    public const int MaxInputCharsPerWord = 200;

    /// <summary>BERT basic tokenization + WordPiece over this vocabulary (Microsoft.ML.Tokenizers): lower-casing and
    /// accent stripping when uncased, punctuation and CJK split, control characters removed, words over
    /// <see cref="MaxInputCharsPerWord"/> characters → [UNK]. Text that spells a special token ("[SEP]") is tokenized as
    /// text, as GluonNLP does, so a sentence cannot inject a separator.</summary>
    public BertTokenizer CreateTokenizer() =>
        BertTokenizer.Create(new MemoryStream(_text), new BertOptions
        {
            LowerCaseBeforeTokenization = LowerCase,
            RemoveNonSpacingMarks = LowerCase,
            MaxInputCharsPerWord = MaxInputCharsPerWord,
            SplitOnSpecialTokens = false,
        });
}
