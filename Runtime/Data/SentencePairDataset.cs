using System.Collections.Concurrent;
using System.Threading.Channels;

namespace GraphCompiler.Runtime.Data;

/// <summary>A TSV file of sentence pairs tokenized once into <see cref="EncodedExample"/>s (in file order), with the
/// report of what happened to its rows. Reading streams the file on one thread into a bounded channel; tokenization
/// runs on <see cref="Environment.ProcessorCount"/> workers. Errors are collected and the one with the lowest line
/// is thrown (so the outcome does not depend on thread timing); under <see cref="BadRows.Skip"/> they are listed
/// in <see cref="DataReport.Skipped"/> instead.</summary>
public sealed class SentencePairDataset
{
    private SentencePairDataset(IReadOnlyList<EncodedExample> examples, DataReport report)
    {
        Examples = examples;
        Report = report;
    }

    public IReadOnlyList<EncodedExample> Examples { get; }

    public DataReport Report { get; }

    public int Count => Examples.Count;

    /// <summary>The first <paramref name="count"/> examples (file order), for short runs; the report stays the file's.</summary>
    public SentencePairDataset Take(int count) => count >= Count ? this : new(Examples.Take(count).ToArray(), Report);

    /// <summary>This dataset's examples followed by <paramref name="other"/>'s (e.g. the same pairs with their sentences
    /// swapped, see <see cref="Swapped"/>); the report stays this dataset's.</summary>
    public SentencePairDataset Concat(SentencePairDataset other) => new([.. Examples, .. other.Examples], Report);

    /// <summary>The same TSV layout with the two sentence fields exchanged: loading with it gives each pair as (B, A).
    /// A paraphrase is symmetric, so the swapped pairs are further training examples with the same labels.</summary>
    public static TsvOptions Swapped(TsvOptions tsv) =>
        tsv.FieldIndices is { Count: >= 2 } f
            ? tsv with { FieldIndices = [f[1], f[0], .. f.Skip(2)] }
            : throw new ArgumentException("swapping sentences needs FieldIndices naming sentence A, sentence B and the label");

    /// <summary>The token count (valid length) of every example, for a sampler.</summary>
    public IReadOnlyList<int> Lengths => Examples.Select(e => e.ValidLength).ToArray();

    /// <summary>GLUE MRPC: header line, fields [3, 4, 0] = #1 String, #2 String, Quality.</summary>
    public static TsvOptions MrpcTsv { get; } = new() { NumDiscardSamples = 1, FieldIndices = [3, 4, 0] };

    /// <summary>Loads a file: bad rows fail the load or are skipped and reported, as <paramref name="tsv"/> says.</summary>
    public static SentencePairDataset Load(string path, TsvOptions tsv, SentencePairTransform transform, int workers = 0, CancellationToken cancellation = default) =>
        Load(TsvDataset.FromFile(path, tsv with { BadRows = BadRows.Skip }), tsv.BadRows, transform, workers, cancellation);

    /// <summary>Loads <paramref name="rows"/>; a bad row throws under <paramref name="badRows"/> = Throw, or is listed
    /// in the report. (A TSV-level error stops the reading when <paramref name="rows"/> itself throws.)</summary>
    public static SentencePairDataset Load(TsvDataset rows, BadRows badRows, SentencePairTransform transform, int workers = 0, CancellationToken cancellation = default)
    {
        workers = workers > 0 ? workers : Math.Max(1, Environment.ProcessorCount);
        var channel = Channel.CreateBounded<(int Index, TsvRow Row)>(new BoundedChannelOptions(1024) { SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        var results = new ConcurrentBag<(int Index, EncodedExample Example)>();
        var errors = new ConcurrentBag<DataFormatException>();
        IReadOnlyList<SkippedRow> readerSkipped = [];
        var lines = 0;
        var reader = Task.Run(
            async () =>
            {
                try
                {
                    var index = 0;
                    foreach (var row in rows)
                    {
                        await channel.Writer.WriteAsync((index++, row), cancellation).ConfigureAwait(false);
                    }

                    readerSkipped = rows.Skipped;
                    lines = rows.LinesRead;
                }
                catch (DataFormatException e)
                {
                    errors.Add(e);
                }
                finally
                {
                    channel.Writer.Complete();
                }
            },
            cancellation);
        var tokenizers = Enumerable.Range(0, workers).Select(_ => Task.Run(
            async () =>
            {
                await foreach (var (index, row) in channel.Reader.ReadAllAsync(cancellation).ConfigureAwait(false))
                {
                    try
                    {
                        results.Add((index, transform.Transform(rows.Source, row)));
                    }
                    catch (DataFormatException e)
                    {
                        errors.Add(e);
                    }
                }
            },
            cancellation)).ToArray();
        Task.WaitAll([reader, .. tokenizers], cancellation);

        var skipped = readerSkipped.Concat(errors.Select(e => new SkippedRow(e.Line, e.Problem))).OrderBy(s => s.Line).ToList();
        if (badRows == BadRows.Throw && skipped.Count > 0)
        {
            var first = skipped[0];
            var more = skipped.Count > 1 ? $" ({skipped.Count - 1} more bad rows after it)" : string.Empty;
            throw new DataFormatException(rows.Source, first.Line, first.Problem + more);
        }

        var examples = results.OrderBy(r => r.Index).Select(r => r.Example).ToList();
        var report = new DataReport(rows.Source, examples.Count, skipped, examples.Count(e => e.Truncated), examples.Count(e => e.SingleSentence)) { Lines = lines };
        return new SentencePairDataset(examples, report);
    }
}
