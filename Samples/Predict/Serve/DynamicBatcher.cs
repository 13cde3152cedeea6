using System.Diagnostics;
using System.Threading.Channels;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Data;

namespace GraphCompiler.Samples.Predict.Serve;

/// <summary>The answer for one request: a label and the probability of that label per row, and the bucket it ran in.</summary>
public sealed record BatchResult(long[] Labels, float[] Probabilities, StaticShapeBucket Bucket, int BatchRows);

/// <summary>One request's encoded rows, waiting for a forward.</summary>
public sealed class PendingRequest(IReadOnlyList<EncodedExample> rows)
{
    public IReadOnlyList<EncodedExample> Rows { get; } = rows;

    public int Longest { get; } = rows.Max(r => r.ValidLength);

    private readonly TaskCompletionSource<BatchResult> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<BatchResult> Result => _done.Task;

    internal void Complete(BatchResult result) => _done.TrySetResult(result);

    internal void Fail(Exception e) => _done.TrySetException(e);
}

/// <summary>Dynamic batching over the model's declared static buckets. Requests wait in a bounded queue; one loop takes
/// what is waiting, up to the largest batch, waits up to <c>maxDelay</c> for requests already on their way in, runs one
/// forward in the cheapest declared bucket that holds them (fewest batch × seq tokens), and answers each request.</summary>
public sealed class DynamicBatcher : IAsyncDisposable
{
    private readonly IInferenceEngine _engine;
    private readonly Channel<PendingRequest> _queue;
    private readonly long _maxDelayTicks;
    private readonly int _clsId, _sepId, _padId;
    private readonly ServeMetrics? _metrics;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _arriving;

    public DynamicBatcher(IInferenceEngine engine, int maxQueue, TimeSpan maxDelay, int clsId, int sepId, int padId, ServeMetrics? metrics = null, bool warmUp = false)
    {
        _engine = engine;
        _clsId = clsId;
        _sepId = sepId;
        _padId = padId;
        _metrics = metrics;
        _maxDelayTicks = (long)(maxDelay.TotalSeconds * Stopwatch.Frequency);
        MaxSeq = engine.Buckets.Max(b => b.Seq);
        // The largest batch that any length fits: that of the longest sequence's buckets.
        MaxBatch = engine.Buckets.Where(b => b.Seq == MaxSeq).Max(b => b.Batch);
        _queue = Channel.CreateBounded<PendingRequest>(new BoundedChannelOptions(maxQueue) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        // One dedicated thread runs every forward: native allocations then come from one glibc arena, which keeps the
        // freed activations for the next batch (NativeHeap), instead of one arena per thread-pool thread that happened
        // to run a batch, each holding its own copy (resident memory grew by half under load that way).
        var thread = new Thread(() => Loop(warmUp)) { IsBackground = true, Name = "batcher" };
        thread.Start();
    }

    public int MaxSeq { get; }

    public int MaxBatch { get; }

    public int QueueDepth => _queue.Reader.Count;

    /// <summary>Completes when the batcher takes requests (after the warm-up, if asked for); faults if the warm-up failed.</summary>
    public Task Ready => _ready.Task;

    /// <summary>Tells the batcher that a request is being read and encoded: while any is, the batcher may wait up to the
    /// delay for it rather than run a batch that it would have joined. Dispose the result when it is queued or refused.</summary>
    public IDisposable Arriving()
    {
        Interlocked.Increment(ref _arriving);
        return new Arrival(this);
    }

    /// <summary>Queues a request; false at once when the queue is full or the batcher is shutting down.</summary>
    public bool TryEnqueue(PendingRequest request)
    {
        if (request.Rows.Count > MaxBatch || request.Longest > MaxSeq)
        {
            throw new ArgumentException($"a request of {request.Rows.Count} rows × {request.Longest} tokens fits no bucket (largest batch {MaxBatch}, longest sequence {MaxSeq})", nameof(request));
        }

        return _queue.Writer.TryWrite(request);
    }

    /// <summary>The cheapest declared bucket holding <paramref name="rows"/> rows of up to <paramref name="longest"/>
    /// tokens: fewest batch × seq, then the shorter sequence.</summary>
    public static StaticShapeBucket Pick(IReadOnlyList<StaticShapeBucket> buckets, int rows, int longest) =>
        buckets.Where(b => b.Batch >= rows && b.Seq >= longest).OrderBy(b => (long)b.Batch * b.Seq).ThenBy(b => b.Seq).First();

    /// <summary>Stops taking requests; what is queued is still answered. Completes when the loop has finished.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stopped.Task.ConfigureAwait(false);
    }

    /// <summary>Runs every declared bucket once (as Triton's model warm-up does): the first call of a shape is slow, and
    /// its working memory is then in place, so resident memory stays flat under load.</summary>
    private void WarmUp()
    {
        foreach (var bucket in _engine.Buckets)
        {
            var ids = new long[bucket.Batch * bucket.Seq];
            var lengths = new long[bucket.Batch];
            for (var r = 0; r < bucket.Batch; r++)
            {
                ids[r * bucket.Seq] = _clsId;
                ids[(r * bucket.Seq) + 1] = _sepId;
                lengths[r] = 2;
            }

            _engine.Run(ids, new long[ids.Length], lengths, bucket.Batch, bucket.Seq);
        }
    }

    private void Loop(bool warmUp)
    {
        try
        {
            if (warmUp)
            {
                WarmUp();
            }
        }
        catch (Exception e)
        {
            _ready.TrySetException(e);
            _stopped.TrySetResult();
            return;
        }

        _ready.TrySetResult();
        try
        {
            Batches();
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    private void Batches()
    {
        var reader = _queue.Reader;
        PendingRequest? carry = null;
        var batch = new List<PendingRequest>();
        while (true)
        {
            if (carry is null && !reader.TryRead(out carry))
            {
                // Blocks this thread (it has nothing else to do) until a request or the end.
                if (!reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
                {
                    return;
                }

                continue;
            }

            batch.Clear();
            batch.Add(carry);
            var rows = carry.Rows.Count;
            carry = null;
            var deadline = Stopwatch.GetTimestamp() + _maxDelayTicks;
            while (rows < MaxBatch)
            {
                if (reader.TryRead(out var next))
                {
                    if (rows + next.Rows.Count > MaxBatch)
                    {
                        carry = next;
                        break;
                    }

                    batch.Add(next);
                    rows += next.Rows.Count;
                    continue;
                }

                // Nobody on the way in: waiting would only add latency.
                var remaining = deadline - Stopwatch.GetTimestamp();
                if (Volatile.Read(ref _arriving) == 0 || remaining <= 0)
                {
                    break;
                }

                var more = reader.WaitToReadAsync().AsTask();
                if (!more.Wait(TimeSpan.FromSeconds((double)remaining / Stopwatch.Frequency)) || !more.Result)
                {
                    // Nothing came within the delay (or the queue closed): run what is here; anything that arrives now
                    // is taken by the next turn.
                    break;
                }
            }

            _metrics?.QueueDepth.Set(reader.Count);
            Execute(batch, rows);
        }
    }

    /// <summary>One forward for the batch; if it fails, each request is run alone so that one request's failure is its
    /// own (requests are checked before they are queued, so this is a last line, not the plan).</summary>
    private void Execute(List<PendingRequest> batch, int rows)
    {
        try
        {
            Forward(batch, rows);
        }
        catch (Exception e) when (batch.Count > 1)
        {
            _ = e;
            foreach (var request in batch)
            {
                try
                {
                    Forward([request], request.Rows.Count);
                }
                catch (Exception alone)
                {
                    request.Fail(alone);
                }
            }
        }
        catch (Exception e)
        {
            batch[0].Fail(e);
        }
    }

    private void Forward(IReadOnlyList<PendingRequest> batch, int rows)
    {
        var longest = batch.Max(r => r.Longest);
        var bucket = Pick(_engine.Buckets, rows, longest);
        int n = bucket.Batch, seq = bucket.Seq;
        var ids = new long[n * seq];
        var types = new long[n * seq];
        var lengths = new long[n];
        if (_padId != 0)
        {
            Array.Fill(ids, _padId);
        }

        var r = 0;
        foreach (var request in batch)
        {
            foreach (var e in request.Rows)
            {
                for (var j = 0; j < e.ValidLength; j++)
                {
                    ids[(r * seq) + j] = e.TokenIds[j];
                    types[(r * seq) + j] = e.SegmentIds[j];
                }

                lengths[r++] = e.ValidLength;
            }
        }

        // Filler rows are "[CLS] [SEP]", never all padding (whose attention would be NaN), as the training batches pad.
        for (; r < n; r++)
        {
            ids[r * seq] = _clsId;
            ids[(r * seq) + 1] = _sepId;
            lengths[r] = 2;
        }

        var logits = _engine.Run(ids, types, lengths, n, seq);
        var classes = logits.Length / n;
        _metrics?.BatchSize.Observe(rows);
        _metrics?.Batches.WithLabels(bucket.ToString().Replace('×', 'x')).Inc();

        r = 0;
        foreach (var request in batch)
        {
            var labels = new long[request.Rows.Count];
            var probabilities = new float[request.Rows.Count];
            for (var i = 0; i < labels.Length; i++, r++)
            {
                (labels[i], probabilities[i]) = Softmax(logits.AsSpan(r * classes, classes));
            }

            request.Complete(new BatchResult(labels, probabilities, bucket, rows));
        }
    }

    /// <summary>The arg-max label and its softmax probability.</summary>
    private static (long Label, float Probability) Softmax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
            {
                best = i;
            }
        }

        double sum = 0;
        foreach (var l in logits)
        {
            sum += Math.Exp(l - logits[best]);
        }

        return (best, (float)(1 / sum));
    }

    private sealed class Arrival(DynamicBatcher batcher) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref batcher._arriving);
            }
        }
    }
}
