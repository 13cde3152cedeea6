using System.Collections.Concurrent;
using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Samples.Predict.Serve;
using Xunit;

namespace GraphCompiler.Tests.Samples;

/// <summary>The batcher on its own, over an engine that records its calls: bucket choice, batching of concurrent
/// requests, a failing forward failing only the request that caused it, the warm-up, the bounded queue.</summary>
public class DynamicBatcherTests
{
    private const int Poison = 999;

    /// <summary>Logit 1 is the row's valid length (so each answer shows which row it came from); any row holding the
    /// <see cref="Poison"/> token makes the whole forward throw.</summary>
    private sealed class RecordingEngine(TimeSpan delay = default) : IInferenceEngine
    {
        public ConcurrentQueue<(int Batch, int Seq)> Calls { get; } = new();

        public TimeSpan Delay { get; set; } = delay;

        public string Platform => "test";

        public IReadOnlyList<StaticShapeBucket> Buckets => MiniLmClassifierModule.Buckets;

        public float[] Run(long[] ids, long[] types, long[] lengths, int batch, int seq)
        {
            Assert.Contains(new StaticShapeBucket(batch, seq), Buckets);
            Calls.Enqueue((batch, seq));
            Thread.Sleep(Delay);
            if (ids.Contains(Poison))
            {
                throw new InvalidOperationException("poisoned row");
            }

            var logits = new float[batch * 2];
            for (var r = 0; r < batch; r++)
            {
                logits[(2 * r) + 1] = lengths[r];
            }

            return logits;
        }

        public void Dispose()
        {
        }
    }

    private static PendingRequest Request(params int[] lengths) => new(lengths.Select((n, i) =>
        new EncodedExample(i, Enumerable.Range(0, n).Select(j => j == 1 && n == 13 ? Poison : 100 + j).ToArray(), new int[n], n, 0, false, false)).ToArray());

    [Theory]
    [InlineData(1, 20, "1×32")]
    [InlineData(1, 40, "1×64")]
    [InlineData(1, 128, "1×128")]
    [InlineData(3, 30, "4×32")]
    [InlineData(8, 60, "8×64")]
    [InlineData(9, 60, "16×64")]
    [InlineData(20, 90, "32×96")]
    [InlineData(32, 128, "32×128")]
    public void PicksTheCheapestDeclaredBucketThatHoldsTheRows(int rows, int longest, string expected) =>
        Assert.Equal(expected, DynamicBatcher.Pick(MiniLmClassifierModule.Buckets, rows, longest).ToString());

    [Fact]
    public async Task ConcurrentRequestsShareAForwardAndEachGetsItsOwnRows()
    {
        // The engine is slow, so requests pile up behind the first forward and the next one takes them together.
        using var engine = new RecordingEngine(TimeSpan.FromMilliseconds(200));
        await using var batcher = new DynamicBatcher(engine, 64, TimeSpan.FromMilliseconds(2), 101, 102, 0);
        await batcher.Ready;
        var requests = Enumerable.Range(0, 10).Select(i => Request(14 + i, 30 + i)).ToList();
        foreach (var r in requests)
        {
            Assert.True(batcher.TryEnqueue(r));
        }

        var results = await Task.WhenAll(requests.Select(r => r.Result));
        for (var i = 0; i < requests.Count; i++)
        {
            // Logit 1 (the length) wins over 0: label 1, and each request sees its own rows.
            Assert.Equal([1L, 1L], results[i].Labels);
        }

        Assert.True(engine.Calls.Count < requests.Count, $"{engine.Calls.Count} forwards for {requests.Count} requests: nothing was batched");
        Assert.Contains(results, r => r.BatchRows > 2);
    }

    [Fact]
    public async Task AFailingForwardFailsOnlyTheRequestThatCausedIt()
    {
        using var engine = new RecordingEngine(TimeSpan.FromMilliseconds(100));
        await using var batcher = new DynamicBatcher(engine, 64, TimeSpan.FromMilliseconds(2), 101, 102, 0);
        await batcher.Ready;
        var good = Enumerable.Range(0, 6).Select(_ => Request(20)).ToList();
        var bad = Request(13);
        foreach (var r in good.Take(3).Append(bad).Concat(good.Skip(3)))
        {
            Assert.True(batcher.TryEnqueue(r));
        }

        await Assert.ThrowsAsync<InvalidOperationException>(() => bad.Result);
        foreach (var r in good)
        {
            Assert.Equal(new[] { 1L }, (await r.Result).Labels);
        }
    }

    [Fact]
    public async Task TheWarmUpRunsEveryBucketAndAFullQueueRefusesAtOnce()
    {
        using var engine = new RecordingEngine();
        await using var batcher = new DynamicBatcher(engine, 1, TimeSpan.Zero, 101, 102, 0, warmUp: true);
        await batcher.Ready;
        Assert.Equal(MiniLmClassifierModule.Buckets.Select(b => (b.Batch, b.Seq)).Order(), engine.Calls.Order());
        engine.Delay = TimeSpan.FromMilliseconds(300);

        // One forward running, one request waiting: the third is refused, not queued.
        Assert.True(batcher.TryEnqueue(Request(10)));
        await Task.Delay(100);
        Assert.True(batcher.TryEnqueue(Request(10)));
        Assert.False(batcher.TryEnqueue(Request(10)));
    }
}
