using GraphCompiler.Runtime.Data;
using Xunit;

namespace GraphCompiler.Tests.Data;

/// <summary>The fixed-bucket sampler and the static-shape batches it plans.</summary>
public class FixedBucketSamplerTests
{
    private static readonly int[] Buckets = [16, 32, 64, 128];

    /// <summary>250 lengths spread over every bucket, not a multiple of the batch size.</summary>
    private static int[] Lengths(int count = 250, int seed = 3)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => random.Next(2, 129)).ToArray();
    }

    private static int[][] Order(BatchPlan plan) => plan.Batches.Select(b => b.Indices).ToArray();

    [Fact]
    public void SameSeed_SameBatches_DifferentSeedOrEpoch_DifferentOrder()
    {
        var lengths = Lengths();
        var plan = new FixedBucketSampler(lengths, Buckets, 8, shuffle: true, seed: 5).Plan(0);
        var again = new FixedBucketSampler(lengths, Buckets, 8, shuffle: true, seed: 5).Plan(0);
        Assert.Equal(Order(plan), Order(again));
        Assert.Equal(plan.Batches.Select(b => b.Seq), again.Batches.Select(b => b.Seq));

        var otherSeed = new FixedBucketSampler(lengths, Buckets, 8, shuffle: true, seed: 6).Plan(0);
        var otherEpoch = new FixedBucketSampler(lengths, Buckets, 8, shuffle: true, seed: 5).Plan(1);
        Assert.NotEqual(Order(plan), Order(otherSeed));
        Assert.NotEqual(Order(plan), Order(otherEpoch));

        // Without shuffling, rows keep file order within each bucket and the plan is the same for every seed.
        var plain = new FixedBucketSampler(lengths, Buckets, 8, shuffle: false, seed: 1).Plan(0);
        Assert.Equal(Order(plain), Order(new FixedBucketSampler(lengths, Buckets, 8, shuffle: false, seed: 2).Plan(3)));
        Assert.NotEqual(Order(plan), Order(plain));
    }

    /// <summary>The plan is a fixed function of (seed, epoch), the same in every process: pinned here, since a
    /// per-process hash (HashCode.Combine) once made two runs with the same seed train on different batch orders.</summary>
    [Fact]
    public void ThePlanIsTheSameInEveryProcess()
    {
        var plan = new FixedBucketSampler(Lengths(), Buckets, 8, shuffle: true, seed: 5).Plan(1);
        Assert.Equal(new[] { 4, 130, 60, 61, 12, 116, 174, 26 }, plan.Batches[0].Indices);
    }

    [Theory]
    [InlineData(LastBatch.Pad, 8)]
    [InlineData(LastBatch.Keep, 8)]
    [InlineData(LastBatch.Pad, 32)]
    [InlineData(LastBatch.Keep, 1)]
    [InlineData(LastBatch.Pad, 300)] // one batch, bigger than the data
    public void EveryRowInExactlyOneBatch_PaddedToABucketThatHoldsIt(LastBatch last, int batchSize)
    {
        var lengths = Lengths();
        var sampler = new FixedBucketSampler(lengths, Buckets, batchSize, shuffle: true, seed: 11, last);
        for (var epoch = 0; epoch < 3; epoch++)
        {
            var plan = sampler.Plan(epoch);
            Assert.Equal(Enumerable.Range(0, lengths.Length), plan.Batches.SelectMany(b => b.Indices).Order());
            foreach (var batch in plan.Batches)
            {
                Assert.Contains(batch.Seq, Buckets);
                Assert.True(batch.Seq >= batch.Indices.Max(i => lengths[i]));
            }

            // Only the last batch may be partial, and only when the count is not a multiple of the batch size.
            Assert.All(plan.Batches.SkipLast(1), b => Assert.Equal(batchSize, b.Indices.Length));
            var partial = lengths.Length % batchSize;
            Assert.Equal(partial == 0 ? batchSize : partial, plan.Batches[^1].Indices.Length);
            Assert.Equal(last == LastBatch.Pad && partial != 0 ? batchSize - partial : 0, plan.FillerRows);
            Assert.Equal(lengths.Sum(), plan.RealTokens);
        }
    }

    /// <summary>Lengths 3, 5, 9, 10, 16; buckets 8, 16; batch 2; no shuffle. Bucket 8 holds rows 0, 1: one batch
    /// (8 × 2 slots). Bucket 16 holds rows 2, 3, 4: batch [2, 3] (16 × 2) and row 4 left over, the partial last batch
    /// at bucket 16. Real tokens 3 + 5 + 9 + 10 + 16 = 43. Padded to 2 rows: 16 + 32 + 32 = 80 slots, padding
    /// 1 − 43/80 = 37/80; kept: 16 + 32 + 16 = 64 slots, padding 21/64.</summary>
    [Theory]
    [InlineData(LastBatch.Pad, 80, 1, 37.0 / 80)]
    [InlineData(LastBatch.Keep, 64, 0, 21.0 / 64)]
    public void PaddingRatio_HandChecked(LastBatch last, long slots, int filler, double ratio)
    {
        var plan = new FixedBucketSampler([3, 5, 9, 10, 16], [16, 8], 2, shuffle: false, lastBatch: last).Plan();
        Assert.Equal([(8, new[] { 0, 1 }), (16, new[] { 2, 3 }), (16, new[] { 4 })], plan.Batches.Select(b => (b.Seq, b.Indices)));
        Assert.Equal(43, plan.RealTokens);
        Assert.Equal(slots, plan.TokenSlots);
        Assert.Equal(filler, plan.FillerRows);
        Assert.Equal(ratio, plan.PaddingRatio, 12);
        Assert.Contains($"{filler} filler rows", plan.ToString());
    }

    /// <summary>A row that does not fill a batch in its bucket moves up with the next bucket's rows: lengths 3, 9, 10
    /// with batch 2 give [0, 1] at 16 (row 0 padded from 3 to 16, not left alone in a batch of its own) and [2] last.</summary>
    [Fact]
    public void LeftoverRowsMoveUpToTheNextBucket()
    {
        var plan = new FixedBucketSampler([3, 9, 10], [8, 16], 2, shuffle: false).Plan();
        Assert.Equal([(16, new[] { 0, 1 }), (16, new[] { 2 })], plan.Batches.Select(b => (b.Seq, b.Indices)));
        Assert.Equal(8, new FixedBucketSampler([3, 9, 10], [8, 16], 2).BucketOf(8));
        Assert.Equal(16, new FixedBucketSampler([3, 9, 10], [8, 16], 2).BucketOf(9));
        Assert.Throws<ArgumentException>(() => new FixedBucketSampler([3, 17], [8, 16], 2));
    }

    /// <summary>The partial last batch as tensors: padded to the static batch size with "[CLS] [SEP]" filler rows and
    /// a false mask, or kept at its own size.</summary>
    [Theory]
    [InlineData(LastBatch.Pad)]
    [InlineData(LastBatch.Keep)]
    public void LastBatch_PaddedWithMaskedFillerRows_OrKept(LastBatch last)
    {
        var transform = DataFixtures.Transform();
        var text = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n" + string.Concat(Enumerable.Range(0, 5).Select(i => $"{i % 2}\t1\t2\tSentence number {i} here.\tAnother {string.Join(' ', Enumerable.Repeat("word", i * 4))}.\n"));
        var data = SentencePairDataset.Load(DataFixtures.Tsv(DataFixtures.Utf8(text), SentencePairDataset.MrpcTsv), BadRows.Throw, transform);
        var sampler = new FixedBucketSampler(data.Lengths, [16, 32], batchSize: 4, shuffle: false, lastBatch: last);
        var batches = new DataLoader(data, transform, sampler, prefetch: 1).Epoch().ToList();
        try
        {
            Assert.Equal(2, batches.Count);
            var first = batches[0];
            Assert.Equal((4L, 4), (first.BatchSize, first.Rows));
            Assert.Equal([2, 3, 4, 5], first.Lines);
            var lastBatch = batches[1];
            Assert.Equal(1, lastBatch.Rows);
            Assert.Equal([6], lastBatch.Lines);
            Assert.Equal(32, lastBatch.Seq); // row 4 has 5 + 18 + 3 = 26 tokens > 16
            Assert.Equal(last == LastBatch.Pad ? 4 : 1, lastBatch.BatchSize);
            var mask = lastBatch.RowMask.data<bool>().ToArray();
            Assert.Equal(last == LastBatch.Pad ? [true, false, false, false] : [true], mask);
            Assert.Equal(lastBatch.Rows, mask.Count(m => m));
            var lengths = lastBatch.ValidLength.data<long>().ToArray();
            Assert.Equal(data.Examples[4].ValidLength, lengths[0]);
            var ids = lastBatch.TokenIds.data<long>().ToArray();
            for (var r = 1; r < lastBatch.BatchSize; r++)
            {
                Assert.Equal(2, lengths[r]);
                Assert.Equal([transform.ClsId, transform.SepId], ids.Skip(r * 32).Take(2).Select(i => (int)i));
                Assert.All(ids.Skip((r * 32) + 2).Take(30), id => Assert.Equal(transform.PadId, id));
            }

            // Real rows: the example's ids, then [PAD] to the bucket.
            Assert.Equal(data.Examples[4].TokenIds.Select(i => (long)i), ids.Take(data.Examples[4].ValidLength));
            Assert.All(ids.Skip(data.Examples[4].ValidLength).Take(32 - data.Examples[4].ValidLength), id => Assert.Equal(transform.PadId, id));
            Assert.Equal(last == LastBatch.Pad ? [0L, 0, 0, 0] : [0L], lastBatch.Label!.data<long>().ToArray());
        }
        finally
        {
            batches.ForEach(b => b.Dispose());
        }
    }
}
