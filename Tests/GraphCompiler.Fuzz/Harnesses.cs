using System.Buffers.Binary;
using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.Onnx;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Runtime.Text;
using GraphCompiler.Runtime.Weights;
using GraphCompiler.Samples.Predict;
using Microsoft.ML.Tokenizers;

namespace GraphCompiler.Fuzz;

/// <summary>A documented refusal whose message does not name the file: a bug of the reader too.</summary>
public sealed class UnnamedFileException(string message, Exception inner) : Exception(message, inner);

/// <summary>One reader under fuzzing: the input is written to a file (the readers take paths, as users give them) and
/// read. A result or the reader's documented exception naming the file is fine; anything else escapes, and SharpFuzz
/// reports it to afl-fuzz as a crash. <paramref name="secondFile"/>: a second file the input is split into (the symbol
/// JSON), which a refusal may name instead.</summary>
public sealed class Harness(string name, string extension, Type[] documented, Func<string, byte[], string> read, string? secondFile = null)
{
    /// <summary>Over this, an input is a hang (afl-fuzz is given the same limit).</summary>
    public static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(1);

    /// <summary>Per process, in memory when /dev/shm exists (afl-fuzz writes thousands of inputs a second).</summary>
    public static readonly string WorkDir = Directory.CreateDirectory(Path.Combine(
        Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), $"graphcompiler-fuzz-{Environment.ProcessId}")).FullName;

    public string Name { get; } = name;

    /// <summary>Where inputs are written: a fixed name per process (afl-fuzz runs one input at a time).</summary>
    public string InputPath { get; } = Path.Combine(WorkDir, "input" + extension);

    /// <summary>The loop body for SharpFuzz.</summary>
    public void Run(Stream input)
    {
        using var memory = new MemoryStream();
        input.CopyTo(memory);
        Run(memory.ToArray());
    }

    /// <summary>Runs a file (a crash to replay, a seed); returns what happened when it is acceptable.</summary>
    public string RunFile(string file) => Run(File.ReadAllBytes(file));

    public string Run(byte[] bytes)
    {
        File.WriteAllBytes(InputPath, bytes);
        try
        {
            return "ok: " + read(InputPath, bytes);
        }
        catch (Exception e) when (documented.Contains(e.GetType()))
        {
            if (!e.Message.Contains(InputPath, StringComparison.Ordinal) && !(secondFile is not null && e.Message.Contains(secondFile, StringComparison.Ordinal)))
            {
                throw new UnnamedFileException($"{Name}: {e.GetType().Name} does not name the file: {e.Message}", e);
            }

            return $"refused ({e.GetType().Name}): {e.Message}";
        }
    }
}

/// <summary>The harnesses, by the name `fuzz` and scripts/fuzz.sh take.</summary>
public static class Harnesses
{
    /// <summary>The symbol harness's second file (its input holds both).</summary>
    public static readonly string SymbolPath = Path.Combine(Harness.WorkDir, "model-symbol.json");

    /// <summary>The vocabulary the TSV and predict harnesses tokenize with (also the vocab harness's seed).</summary>
    public const string SmallVocab =
        "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n!\n\"\n'\n(\n)\n,\n-\n.\n:\n;\n?\n$\n%\n0\n1\n2\n3\n5\n9\na\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\no\np\n"
        + "q\nr\ns\nt\nu\nv\nw\nx\ny\nz\nthe\nof\nand\nto\nin\nis\nsaid\nhe\nshe\nit\nwas\nfor\non\nthat\nwith\nas\nat\nby\nfrom\n"
        + "company\nshares\nmarket\nyear\npercent\n##s\n##ed\n##ing\n##ly\n##er\n##a\n##e\n##n\n##t\n##o\n##r\ncafe\nnaive\n中\n文\n";

    private static readonly Lazy<BertTokenizer> Tokenizer = new(() => new Vocabulary("small-vocab", System.Text.Encoding.UTF8.GetBytes(SmallVocab)).CreateTokenizer());

    private static readonly Lazy<IGraphModule> Deployed = new(() => new MiniLmClassifierInt8Module());

    public static IReadOnlyDictionary<string, Harness> All { get; } = new[]
    {
        new Harness("safetensors", ".safetensors", [typeof(WeightFileException)], (path, _) =>
        {
            using var set = SafeTensors.Read(path);
            return $"{set.Count} tensors";
        }),
        new Harness("params", ".params", [typeof(WeightFileException)], (path, _) =>
        {
            using var set = MxNetParams.Read(path);
            return $"{set.Count} tensors";
        }),
        new Harness("onnx", ".onnx", [typeof(WeightFileException)], (path, bytes) =>
        {
            // The model view (what the quantizer reads, float initializers included), then the weights.
            var model = OnnxModelReader.Read(bytes, path);
            var floats = 0L;
            foreach (var init in model.Initializers.Where(i => i.DataType == OnnxDataType.Float))
            {
                floats += OnnxModelReader.Floats(init, path).Length;
            }

            using var set = OnnxWeights.Read(path);
            return $"{model.Nodes.Count} nodes, {floats} float initializer values, {set.Count} weights";
        }),
        new Harness("symbol", ".params", [typeof(SymbolFileException)], (path, bytes) =>
        {
            // Input: u32 little-endian length of the symbol JSON, the JSON, then the params (safetensors).
            if (bytes.Length < 4)
            {
                return "too short to split";
            }

            var length = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(bytes), (uint)(bytes.Length - 4));
            File.WriteAllBytes(SymbolPath, bytes.AsSpan(4, length).ToArray());
            File.WriteAllBytes(path, bytes.AsSpan(4 + length).ToArray());
            var names = SymbolFile.Load(SymbolPath).Arguments.Select(a => a.Name).ToArray();
            using var block = SymbolBlock.Imports(SymbolPath, names, path);
            return $"{block.Graph.Nodes.Count} nodes";
        }, secondFile: SymbolPath),
        new Harness("tsv", ".tsv", [typeof(DataFormatException)], (path, _) =>
        {
            // As the MRPC sample loads training data: bad rows fail the load, then (--skip-bad-rows) are skipped.
            var transform = new SentencePairTransform(Tokenizer.Value, new PairTransformOptions { MaxLength = 32 });
            string strict;
            try
            {
                strict = $"{SentencePairDataset.Load(path, SentencePairDataset.MrpcTsv, transform, workers: 1).Count} rows";
            }
            catch (DataFormatException e) when (e.Message.StartsWith(path, StringComparison.Ordinal))
            {
                strict = "refused";
            }

            var skipping = SentencePairDataset.Load(path, SentencePairDataset.MrpcTsv with { BadRows = BadRows.Skip }, transform, workers: 1);
            DataChecks.RequirePairs(skipping, "training");
            DataChecks.RequireEveryClass(skipping, transform.Options.ClassLabels, "training");
            return $"{strict}; skipping bad rows: {skipping.Report}";
        }),
        new Harness("vocab", ".txt", [typeof(DataFormatException)], (path, _) =>
        {
            var tokenizer = Vocabulary.FromFile(path).CreateTokenizer();
            var ids = BertText.Encode(tokenizer, "The Company's shares (naïve café, 中文) rose 5% to $9.\tsaid-he");
            return $"{ids.Count} ids";
        }),
        new Harness("predict", ".tsv", [typeof(PredictException)], (path, _) =>
        {
            var (_, data, sampler) = Predictor.ReadInput(path, Deployed.Value, Tokenizer.Value);
            return $"{data.Count} rows, {sampler.Plan().Batches.Count} batches, {data.Report.Skipped.Count} skipped";
        }),
    }.ToDictionary(h => h.Name, StringComparer.Ordinal);
}
