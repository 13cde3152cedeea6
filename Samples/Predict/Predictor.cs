using System.Globalization;
using System.Text;
using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Runtime.Text;
using GraphCompiler.Runtime.Weights;
using Microsoft.ML.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Samples.Predict;

/// <summary>What <c>predict</c> is asked to do.</summary>
public sealed record PredictSettings(string ModelPrefix, string Input, string Output)
{
    /// <summary>vocab.txt of the model (default: PREFIX-vocab.txt, written by the export).</summary>
    public string? Vocab { get; init; }

    /// <summary>Intra-op threads (0 = libtorch's default).</summary>
    public int Threads { get; init; }
}

/// <summary>How a run went: rows predicted, rows skipped (with their line and reason), time spent in the model.</summary>
public sealed record PredictSummary(int Predicted, IReadOnlyList<SkippedRow> Skipped, int Batches, double ModelSeconds)
{
    /// <summary>The process exit code: 0 every row predicted, 2 some rows were bad (the rest predicted).</summary>
    public int ExitCode => Skipped.Count == 0 ? 0 : 2;
}

/// <summary>A fatal problem with the model files or the input file: nothing was written.</summary>
public sealed class PredictException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The deployment program's work: MRPC-layout TSV in (header; sentences in columns 3 and 4; column 0 — a
/// label or an index — ignored), <c>index TAB label TAB probability</c> out, one line per good input row in input
/// order. index is the row's 0-based position among the data rows (the header excluded); probability is the softmax
/// probability of the predicted label. A bad row is reported with its line number and skipped; the rest are
/// predicted.</summary>
public static class Predictor
{
    /// <summary>The model this binary embeds (generated at build time from ModelDefs) and the precision it runs.</summary>
    public static string EmbeddedModel => DeployedModel.Name;

    public static string EmbeddedPrecision => DeployedModel.Precision;

    public static PredictSummary Run(PredictSettings settings, TextWriter errors)
    {
        // Batch after batch allocates the same activations: keep freed blocks in glibc's heap rather than fault in and
        // zero-fill fresh mmap pages every batch (as the trainer does).
        GraphCompiler.Runtime.NativeHeap.KeepFreedMemory();
        if (settings.Threads > 0)
        {
            torch.set_num_threads(settings.Threads);
        }

        var symbolFile = settings.ModelPrefix + "-symbol.json";
        var paramsFile = settings.ModelPrefix + "-0000.params";
        var vocabFile = settings.Vocab ?? settings.ModelPrefix + "-vocab.txt";
        foreach (var file in new[] { symbolFile, paramsFile, vocabFile, settings.Input })
        {
            if (!File.Exists(file))
            {
                throw new PredictException($"file not found: {file}" + (file == settings.Input ? "" : $" (--model {settings.ModelPrefix} expects {Path.GetFileName(symbolFile)}, {Path.GetFileName(paramsFile)} and {Path.GetFileName(vocabFile)} written by the export)"));
            }
        }

        CheckSymbol(symbolFile);
        using var module = DeployedModel.Create();
        LoadParams(module, paramsFile);
        module.eval();

        Vocabulary vocabulary;
        try
        {
            vocabulary = Vocabulary.FromFile(vocabFile);
        }
        catch (DataFormatException e)
        {
            throw new PredictException(e.Message, e);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
        {
            throw new PredictException($"{vocabFile}: cannot read the vocabulary: {e.Message}", e);
        }

        var graph = (IGraphModule)module;
        var (transform, data, sampler) = ReadInput(settings.Input, graph, vocabulary.CreateTokenizer());
        foreach (var bad in data.Report.Skipped)
        {
            errors.WriteLine($"{settings.Input}:{bad.Line}: skipped: {bad.Problem}");
        }

        var results = new SortedDictionary<int, (int Label, float Probability)>();
        var loader = new DataLoader(data, transform, sampler);
        var batches = 0;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        using (no_grad())
        {
            foreach (var batch in loader.Epoch())
            {
                using var b = batch;
                using var scope = NewDisposeScope();
                var probabilities = softmax(module.call(b.TokenIds, b.SegmentIds, b.ValidLength), -1);
                var (best, label) = probabilities.max(-1);
                var p = best.data<float>().ToArray();
                var l = label.data<long>().ToArray();
                for (var i = 0; i < b.Rows; i++)
                {
                    results[b.Lines[i]] = ((int)l[i], p[i]);
                }

                batches++;
            }
        }

        watch.Stop();
        AtomicFile.Write(settings.Output, stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true) { NewLine = "\n" };
            foreach (var (line, (label, probability)) in results)
            {
                // Line 1 is the header, so data row i (0-based) is on line i + 2.
                writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{line - 2}\t{label}\t{probability:0.######}"));
            }
        });
        return new PredictSummary(results.Count, data.Report.Skipped, batches, watch.Elapsed.TotalSeconds);
    }

    /// <summary>Reads predict's input file: MRPC layout, bad rows skipped and reported, each pair tokenized and truncated
    /// to the model's longest bucket, then planned into the model's buckets. A file that cannot be used at all is a
    /// <see cref="PredictException"/> naming it. (The fuzzing harness calls this too.)</summary>
    public static (SentencePairTransform Transform, SentencePairDataset Data, FixedBucketSampler Sampler) ReadInput(string input, IGraphModule graph, BertTokenizer tokenizer)
    {
        var transform = new SentencePairTransform(tokenizer, new PairTransformOptions
        {
            MaxLength = graph.Buckets.Max(b => b.Seq),
            LabelMode = LabelMode.None,
        });
        // Column 0 (label or index) is not read, so a test file without labels works too.
        var rows = TsvDataset.FromFile(input, new TsvOptions { NumDiscardSamples = 1, FieldIndices = [3, 4], BadRows = BadRows.Skip });
        SentencePairDataset data;
        try
        {
            data = SentencePairDataset.Load(rows, BadRows.Skip, transform);

            // An empty, header-only or all-bad input is an error, not an empty output that looks like success.
            DataChecks.RequirePairs(data, "prediction");
        }
        catch (DataFormatException e)
        {
            throw new PredictException(e.Message, e);
        }

        return (transform, data, FixedBucketSampler.ForModel(graph, data.Lengths, shuffle: false));
    }

    /// <summary>The symbol file must describe the model this binary embeds, in the same precision.</summary>
    private static void CheckSymbol(string symbolFile)
    {
        SymbolGraph graph;
        try
        {
            graph = SymbolFile.Load(symbolFile);
        }
        catch (SymbolFileException e)
        {
            throw new PredictException(e.Message, e);
        }

        if (graph.Model != DeployedModel.Name || graph.Precision != DeployedModel.Precision)
        {
            throw new PredictException($"{symbolFile} describes model '{graph.Model}' ({graph.Precision}), but this binary embeds '{DeployedModel.Name}' ({DeployedModel.Precision}); export that model, or build predict for this one.");
        }
    }

    private static void LoadParams(nn.Module module, string paramsFile)
    {
        try
        {
            ModelExport.Load(module, paramsFile);
        }
        catch (Exception e) when (e is WeightFileException or SymbolFileException)
        {
            throw new PredictException(e.Message, e);
        }
    }
}

/// <summary>The model compiled into this binary.</summary>
internal static class DeployedModel
{
    public const string Name = MiniLmClassifierInt8Module.Name;

    public const string Precision = Precisions.Int8;

    public static nn.Module<Tensor, Tensor, Tensor, Tensor> Create() => new MiniLmClassifierInt8Module();
}
