using System.Text;
using System.Text.RegularExpressions;
using GraphCompiler.Runtime.Data;
using Microsoft.ML.Tokenizers;

namespace GraphCompiler.Runtime.Text;

/// <summary>A WordPiece vocabulary (one token a line, id = line number) as a model came with it. A file that cannot be
/// one (a token twice, a special token missing) is a <see cref="DataFormatException"/> naming it.</summary>
public sealed class Vocabulary
{
    private readonly byte[] _text;

    public Vocabulary(string source, byte[] vocabText, bool lowerCase = true)
    {
        Source = source;
        _text = vocabText;
        LowerCase = lowerCase;
        // Lines split as the tokenizer library splits them (StreamReader.ReadLine: \n, \r\n and a lone \r), so the checks
        // below see the tokens it will load.
        using var reader = new StreamReader(new MemoryStream(vocabText));
        var tokens = new List<string>();
        var lineOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var line = 0;
        while (reader.ReadLine() is { } token)
        {
            line++;
            if (token.Length == 0)
            {
                continue;
            }

            // The tokenizer maps token → id and fails deep inside (ArgumentException) on a repeat.
            if (!lineOf.TryAdd(token, line))
            {
                throw new DataFormatException(source, line, $"token '{token}' is listed twice (first on line {lineOf[token]}); a vocabulary gives each token one id");
            }

            tokens.Add(token);
        }

        // Without these the tokenizer fails later with an exception that names neither the file nor the token.
        var missing = SpecialTokens.Where(t => !lineOf.ContainsKey(t)).ToList();
        if (missing.Count > 0)
        {
            throw new DataFormatException(source, $"not a BERT vocabulary: it lacks {string.Join(", ", missing)} (one token a line; {string.Join(", ", SpecialTokens)} are required)");
        }

        Tokens = tokens;
    }

    /// <summary>The tokens BERT's tokenizer needs in every vocabulary.</summary>
    public static IReadOnlyList<string> SpecialTokens { get; } = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    public static Vocabulary FromFile(string path, bool lowerCase = true) => new(path, File.ReadAllBytes(path), lowerCase);

    public string Source { get; }

    public bool LowerCase { get; }

    public IReadOnlyList<string> Tokens { get; }

    public int Count => Tokens.Count;

    /// <summary>GluonNLP's and Google BERT's <c>max_input_chars_per_word</c>: a longer word becomes [UNK]
    /// (Microsoft.ML.Tokenizers defaults to 100, HF's tokenizer too; the reproduced tutorial uses 200).</summary>
    public const int MaxInputCharsPerWord = 200;

    /// <summary>Whether this process can decompose text (NFD), which accent stripping needs. False under .NET's
    /// globalization-invariant mode (<c>InvariantGlobalization</c> / <c>DOTNET_SYSTEM_GLOBALIZATION_INVARIANT</c>), where
    /// <see cref="string.Normalize(NormalizationForm)"/> returns non-ASCII text unchanged instead of failing.</summary>
    public static bool RuntimeCanDecompose { get; } = CanDecompose();

    /// <summary>BERT's basic-tokenizer split (Google's <c>_run_split_on_punc</c>, HF, GluonNLP): a word is a run of
    /// characters that are neither white space nor punctuation, and punctuation is every Unicode P* character and every
    /// ASCII non-alphanumeric character (<c>$ + &lt; = &gt; ^ ` | ~</c> too), each its own token. Other symbols (£ € ´ ½,
    /// categories Sc/Sk/Sm/No) stay inside their word, as in BERT. Microsoft.ML.Tokenizers 2.0.1's default pre-tokenizer
    /// matches <c>\w+|\p{P}</c> instead and so silently drops every character that is neither (ASCII "$" and "+" as
    /// well as "£", "€", "´", "½"), and keeps "_" (category Pc, part of <c>\w</c>) inside words.</summary>
    public static Regex BertPreTokenization { get; } = new(@"[^\s\p{P}!-/:-@\[-`{-~]+|[\p{P}!-/:-@\[-`{-~]", RegexOptions.Compiled | RegexOptions.CultureInvariant);

    /// <summary>BERT basic tokenization + WordPiece over this vocabulary (Microsoft.ML.Tokenizers): lower-casing and
    /// accent stripping when uncased, punctuation and CJK split, control characters removed, words over
    /// <see cref="MaxInputCharsPerWord"/> characters → [UNK]. Text that spells a special token ("[SEP]") is tokenized as
    /// text, as GluonNLP does, so a sentence cannot inject a separator.</summary>
    /// <remarks>The library strips accents by <c>text.Normalize(FormD)</c> and then dropping non-spacing marks, so it
    /// depends on the process's globalization mode: in invariant mode the decomposition silently does nothing, "é"
    /// stays one character, and "HÉLLO naïve café" becomes three [UNK]s where BERT gives "hello naive cafe". An uncased
    /// tokenizer therefore refuses to be created in that mode (<see cref="InvalidOperationException"/>) rather than
    /// lose every accented word; the executable must run with ICU (<c>&lt;InvariantGlobalization&gt;false&lt;/InvariantGlobalization&gt;</c>
    /// in its project, as the test project does).</remarks>
    public BertTokenizer CreateTokenizer()
    {
        EnsureAccentStripping(LowerCase, RuntimeCanDecompose);
        return BertTokenizer.Create(new MemoryStream(_text), new BertOptions
        {
            LowerCaseBeforeTokenization = LowerCase,
            RemoveNonSpacingMarks = LowerCase,
            MaxInputCharsPerWord = MaxInputCharsPerWord,
            SplitOnSpecialTokens = false,
            PreTokenizer = new RegexPreTokenizer(BertPreTokenization, specialTokens: null),
        });
    }

    /// <summary>Throws when an uncased (accent-stripping) tokenizer is wanted but the process cannot decompose text.</summary>
    public static void EnsureAccentStripping(bool lowerCase, bool canDecompose)
    {
        if (lowerCase && !canDecompose)
        {
            throw new InvalidOperationException(
                "An uncased BERT tokenizer strips accents through Unicode decomposition (NFD), which this process cannot do: it runs in "
                + ".NET's globalization-invariant mode (InvariantGlobalization=true or DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1), where "
                + "string.Normalize leaves non-ASCII text unchanged, so every accented word (\"café\") would become [UNK]. Set "
                + "<InvariantGlobalization>false</InvariantGlobalization> in the executable's project (ICU, libicu, must be installed).");
        }
    }

    private static bool CanDecompose()
    {
        try
        {
            return "\u00E9".Normalize(NormalizationForm.FormD) == "e\u0301";
        }
        catch (PlatformNotSupportedException)
        {
            return false;
        }
    }
}
