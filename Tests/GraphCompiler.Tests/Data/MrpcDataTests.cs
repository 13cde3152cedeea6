using System.Diagnostics;
using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace GraphCompiler.Tests.Data;

/// <summary>The pipeline on the real GLUE MRPC files.</summary>
public class MrpcDataTests(ITestOutputHelper output)
{
    private static string Split(string name) => Path.Combine(Mrpc.Directory, name + ".tsv");

    private static int[] SeqBuckets => MiniLmClassifierModule.Buckets.Select(b => b.Seq).Distinct().ToArray();

    [Theory]
    [InlineData("dev", 408, 279)]
    [InlineData("train", 3668, 2474)]
    public void Mrpc_RowCountsAndLabelBalance(string split, int rows, int positives)
    {
        var data = SentencePairDataset.Load(Split(split), SentencePairDataset.MrpcTsv, DataFixtures.Transform());
        output.WriteLine(data.Report.ToString());
        Assert.Equal(rows, data.Count);
        Assert.Equal(positives, data.Examples.Count(e => e.Label == 1));
        Assert.Empty(data.Report.Skipped);
        Assert.Equal(0, data.Report.SingleSentencePairs);
        Assert.Equal(2, data.Examples[0].Line); // line 1 is the header
        Assert.Equal(rows + 1, data.Examples[^1].Line);
    }

    [Fact]
    public void Mrpc_SwappedPairsExchangeTheSentencesAndKeepTheLabels()
    {
        var transform = DataFixtures.Transform();
        var straight = SentencePairDataset.Load(Split("dev"), SentencePairDataset.MrpcTsv, transform);
        var swapped = SentencePairDataset.Load(Split("dev"), SentencePairDataset.Swapped(SentencePairDataset.MrpcTsv), transform);
        Assert.Equal([4, 3, 0], SentencePairDataset.Swapped(SentencePairDataset.MrpcTsv).FieldIndices);
        Assert.Equal(straight.Count, swapped.Count);
        for (var i = 0; i < straight.Count; i++)
        {
            var (s, w) = (straight.Examples[i], swapped.Examples[i]);
            Assert.Equal(s.Label, w.Label);
            Assert.Equal(s.ValidLength, w.ValidLength);

            // [CLS] a [SEP] b [SEP] becomes [CLS] b [SEP] a [SEP], with segment 0 over the new first sentence.
            var lengthA = s.SegmentIds.Take(s.ValidLength).Count(t => t == 0) - 2;
            var lengthB = s.ValidLength - lengthA - 3;
            var a = s.TokenIds.Skip(1).Take(lengthA);
            var b = s.TokenIds.Skip(lengthA + 2).Take(lengthB);
            Assert.Equal(b.Concat(a), w.TokenIds.Skip(1).Take(lengthB).Concat(w.TokenIds.Skip(lengthB + 2).Take(lengthA)));
            Assert.Equal(lengthB + 2, w.SegmentIds.Take(w.ValidLength).Count(t => t == 0));
        }

        var both = straight.Concat(swapped);
        Assert.Equal(2 * straight.Count, both.Count);
        Assert.Same(straight.Examples[0], both.Examples[0]);
        Assert.Same(swapped.Examples[0], both.Examples[straight.Count]);
        Assert.Throws<ArgumentException>(() => SentencePairDataset.Swapped(new TsvOptions { FieldIndices = [3] }));
    }

    [Fact]
    public void Mrpc_FirstDevPairTokenIdsCheckedAgainstTheVocabulary()
    {
        // dev.tsv line 2: label 1,
        // a = He said the foodservice pie business doesn't fit the company's long-term growth strategy.
        // b = "The foodservice pie business does not fit our long-term growth strategy.
        // Ids looked up by hand in vocab.txt (id = line number − 1): [CLS]=101 [SEP]=102 he=2002 said=2056 the=1996
        // foods=9440 ##er=2121 ##vic=7903 ##e=2063 pie=11345 business=2449 doesn=2987 '=1005 t=1056 fit=4906
        // company=2194 s=1055 long=2146 -=1011 term=2744 growth=3930 strategy=5656 .=1012 "=1000 does=2515 not=2025 our=2256
        int[] a = [2002, 2056, 1996, 9440, 2121, 7903, 2063, 11345, 2449, 2987, 1005, 1056, 4906, 1996, 2194, 1005, 1055, 2146, 1011, 2744, 3930, 5656, 1012];
        int[] b = [1000, 1996, 9440, 2121, 7903, 2063, 11345, 2449, 2515, 2025, 4906, 2256, 2146, 1011, 2744, 3930, 5656, 1012];
        int[] expectedIds = [101, .. a, 102, .. b, 102];
        int[] expectedTypes = [.. Enumerable.Repeat(0, a.Length + 2), .. Enumerable.Repeat(1, b.Length + 1)];
        var vocab = DataFixtures.Vocabulary.Tokens;
        Assert.Equal(
            "[CLS] he said the foods ##er ##vic ##e pie business doesn ' t fit the company ' s long - term growth strategy . [SEP] \" the foods ##er ##vic ##e pie business does not fit our long - term growth strategy . [SEP]",
            string.Join(' ', expectedIds.Select(i => vocab[i])));

        var first = TsvDataset.FromFile(Split("dev"), SentencePairDataset.MrpcTsv).First();
        var example = DataFixtures.Transform().Transform("dev.tsv", first);
        Assert.Equal(expectedIds, example.TokenIds);
        Assert.Equal(expectedTypes, example.SegmentIds);
        Assert.Equal(expectedIds.Length, example.ValidLength);
        Assert.Equal(44, example.ValidLength);
        Assert.Equal(1f, example.Label);
        Assert.False(example.Truncated);
    }

    [Fact]
    public void Mrpc_DevBatchesHaveTheModelsStaticShapesAndEveryPairOnce()
    {
        var transform = DataFixtures.Transform();
        var data = SentencePairDataset.Load(Split("dev"), SentencePairDataset.MrpcTsv, transform);
        var sampler = new FixedBucketSampler(data.Lengths, SeqBuckets, batchSize: 32, shuffle: true, seed: 7, LastBatch.Pad);
        var loader = new DataLoader(data, transform, sampler, prefetch: 2);
        var seen = new List<int>();
        var labelSum = 0L;
        foreach (var batch in loader.Epoch(0))
        {
            using (batch)
            {
                Assert.Equal(32, batch.BatchSize);
                Assert.Contains((int)batch.Seq, SeqBuckets);
                Assert.Equal(batch.Rows, (int)batch.RowMask.sum().item<long>());
                Assert.True(batch.ValidLength.max().item<long>() <= batch.Seq);
                Assert.Equal(TorchSharp.torch.ScalarType.Int64, batch.TokenIds.dtype);
                labelSum += (batch.Label! * batch.RowMask).sum().item<long>();
                seen.AddRange(batch.Lines);
            }
        }

        Assert.Equal(Enumerable.Range(2, 408), seen.Order());
        Assert.Equal(279, labelSum);
    }

    /// <summary>Measurements for the closing note (printed, not asserted on time): throughput of tokenization +
    /// batching on MRPC train, the token-length distribution, and the padding ratio of the buckets.</summary>
    [Fact]
    public void Mrpc_ThroughputAndLengthDistribution()
    {
        var transform = DataFixtures.Transform();
        _ = SentencePairDataset.Load(Split("dev"), SentencePairDataset.MrpcTsv, transform); // warm-up (JIT)
        var clock = Stopwatch.StartNew();
        var train = SentencePairDataset.Load(Split("train"), SentencePairDataset.MrpcTsv, transform);
        var tokenizeSeconds = clock.Elapsed.TotalSeconds;
        var singleThreaded = Stopwatch.StartNew();
        var data1 = SentencePairDataset.Load(Split("train"), SentencePairDataset.MrpcTsv, transform, workers: 1);
        var singleSeconds = singleThreaded.Elapsed.TotalSeconds;
        Assert.Equal(train.Examples.Select(e => e.TokenIds), data1.Examples.Select(e => e.TokenIds)); // parallel = sequential
        var sampler = new FixedBucketSampler(train.Lengths, SeqBuckets, 32, shuffle: true, seed: 1);
        var loader = new DataLoader(train, transform, sampler);
        clock.Restart();
        var batches = 0;
        foreach (var batch in loader.Epoch(0))
        {
            batches++;
            batch.Dispose();
        }

        var batchSeconds = clock.Elapsed.TotalSeconds;
        output.WriteLine(train.Report.ToString());
        output.WriteLine($"MRPC train {train.Count} pairs: tokenize {train.Count / tokenizeSeconds:F0} pairs/s ({Environment.ProcessorCount} workers), {train.Count / singleSeconds:F0} pairs/s (1 worker); batching {batches} batches {train.Count / batchSeconds:F0} pairs/s; tokenize + batch {train.Count / (tokenizeSeconds + batchSeconds):F0} pairs/s");

        foreach (var (name, set) in new[] { ("train", train), ("dev", SentencePairDataset.Load(Split("dev"), SentencePairDataset.MrpcTsv, transform)) })
        {
            var lengths = set.Lengths.Order().ToArray();
            int P(double q) => lengths[(int)Math.Min(lengths.Length - 1, Math.Floor(q * lengths.Length))];
            output.WriteLine($"{name}: tokens per pair (with [CLS]/[SEP]) min {lengths[0]}, p50 {P(0.5)}, p90 {P(0.9)}, p99 {P(0.99)}, max {lengths[^1]}, mean {lengths.Average():F1}");
            var buckets = string.Join(", ", SeqBuckets.Select(s => $"≤{s}: {lengths.Count(l => l <= s && l > SeqBuckets.Where(x => x < s).DefaultIfEmpty(0).Max())}"));
            output.WriteLine($"{name}: pairs per bucket {buckets}");
            foreach (var buckets2 in new[] { SeqBuckets, [128] })
            {
                var plan = new FixedBucketSampler(set.Lengths, buckets2, 32, shuffle: true, seed: 1).Plan(0);
                output.WriteLine($"{name}, buckets {{{string.Join(", ", buckets2)}}}: {plan}");
            }
        }

        Assert.Equal(3668, train.Count);
        Assert.Equal(0, train.Report.TruncatedPairs); // MRPC's longest pair is 103 tokens: nothing is cut at 128
    }
}
