using System.Text;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.Text;
using Microsoft.ML.Tokenizers;

namespace GraphCompiler.Tests.Data;

/// <summary>The vocabulary shipped with the pretrained MiniLM (bert-base-uncased, 30,522 tokens), its tokenizer, and
/// small files for bad-input tests.</summary>
internal static class DataFixtures
{
    private static readonly Lazy<Vocabulary> LazyVocabulary = new(() => new Vocabulary(MiniLmPackage.VocabResource, MiniLmPackage.Read(MiniLmPackage.VocabResource)));
    private static readonly Lazy<BertTokenizer> LazyTokenizer = new(() => LazyVocabulary.Value.CreateTokenizer());

    public static Vocabulary Vocabulary => LazyVocabulary.Value;

    public static BertTokenizer Tokenizer => LazyTokenizer.Value;

    public static SentencePairTransform Transform(PairTransformOptions? options = null) => new(Tokenizer, options);

    /// <summary>A TSV dataset over in-memory bytes, named like a file.</summary>
    public static TsvDataset Tsv(byte[] bytes, TsvOptions options, string name = "test.tsv") => new(name, () => new MemoryStream(bytes), options);

    public static byte[] Utf8(string text, bool bom = false) => [.. (bom ? new byte[] { 0xEF, 0xBB, 0xBF } : []), .. Encoding.UTF8.GetBytes(text)];

    public static string WriteTemp(byte[] bytes)
    {
        var path = Path.Combine(Path.GetTempPath(), $"gc-data-{Guid.NewGuid():N}.tsv");
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
