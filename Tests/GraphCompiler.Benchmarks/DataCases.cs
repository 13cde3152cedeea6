using System.Diagnostics;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.Text;

namespace GraphCompiler.Benchmarks;

/// <summary>The data pipeline on MRPC: reading + tokenizing the pairs (SentencePairDataset), then planning and
/// building every padded batch of an epoch (FixedBucketSampler over the minilm buckets + DataLoader).</summary>
public static class DataCases
{
    /// <summary>MRPC's directory: MRPC_DIR (the harness sets it from --data), else ../shared/data/mrpc.</summary>
    public static string MrpcDir => Environment.GetEnvironmentVariable("MRPC_DIR") is { Length: > 0 } dir ? dir : Path.Combine("..", "shared", "data", "mrpc");

    public static CaseResult Run(string dataset, string split, int maxLength, int iterations)
    {
        if (dataset != "mrpc")
        {
            throw new ArgumentException($"unknown data set '{dataset}' (mrpc)");
        }

        var file = Path.Combine(MrpcDir, split + ".tsv");
        if (!File.Exists(file))
        {
            throw new FileNotFoundException($"MRPC {split} split not found at {Path.GetFullPath(file)}: pass --data DIR or set MRPC_DIR", file);
        }

        var vocabulary = new Vocabulary(MiniLmPackage.VocabResource, MiniLmPackage.Read(MiniLmPackage.VocabResource));
        var transform = new SentencePairTransform(vocabulary.CreateTokenizer(), new PairTransformOptions { MaxLength = maxLength });
        var seqBuckets = new[] { 32, 64, 128 }.Where(b => b <= maxLength).DefaultIfEmpty(maxLength).ToArray();
        var pairs = 0;
        var (tokenize, batching) = (new List<double>(), new List<double>());
        var times = Cases.Time(iterations, () =>
        {
            var clock = Stopwatch.StartNew();
            var data = SentencePairDataset.Load(file, SentencePairDataset.MrpcTsv, transform);
            tokenize.Add(clock.Elapsed.TotalSeconds);
            clock.Restart();
            var sampler = new FixedBucketSampler(data.Lengths, seqBuckets, 32, shuffle: true, seed: 0);
            foreach (var batch in new DataLoader(data, transform, sampler).Epoch(0))
            {
                batch.Dispose();
            }

            batching.Add(clock.Elapsed.TotalSeconds);
            pairs = data.Count;
        });
        // Time() runs one warm-up iteration first; these split the timed ones.
        tokenize.RemoveAt(0);
        batching.RemoveAt(0);
        tokenize.Sort();
        batching.Sort();
        return Cases.Result("data: tokenize + batch", "minilm vocab", $"MRPC {split}", pairs, maxLength, times, 0,
            $"tokenize {tokenize[tokenize.Count / 2] * 1000:F0} ms, batch {batching[batching.Count / 2] * 1000:F0} ms (medians)");
    }
}
