using System.Threading.Channels;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Data;

/// <summary>GluonNLP's <c>DataLoader(batch_sampler=…, batchify_fn=Tuple(Pad, Pad, Stack, Stack))</c>: an epoch's
/// batches built as tensors on a background task, at most <see cref="Prefetch"/> ahead of the consumer (a bounded
/// channel), so batching does not stall training. Batches come in the sampler's order; the consumer disposes each.
/// Leaving an epoch early stops the producer and disposes the batches it had prepared.</summary>
public sealed class DataLoader(SentencePairDataset data, SentencePairTransform transform, FixedBucketSampler sampler, int prefetch = 4, Device? device = null)
{
    public SentencePairDataset Data { get; } = data;

    public FixedBucketSampler Sampler { get; } = sampler;

    public int Prefetch { get; } = prefetch > 0 ? prefetch : throw new ArgumentOutOfRangeException(nameof(prefetch), "prefetch must be positive");

    /// <summary>The batches of <paramref name="epoch"/> (the plan is <see cref="FixedBucketSampler.Plan"/> of it).</summary>
    public IEnumerable<Batch> Epoch(int epoch = 0, CancellationToken cancellation = default)
    {
        var plan = Sampler.Plan(epoch);
        var staticBatch = Sampler.LastBatch == LastBatch.Pad ? Sampler.BatchSize : 0;
        var channel = Channel.CreateBounded<Batch>(new BoundedChannelOptions(Prefetch) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var producer = Task.Run(
            async () =>
            {
                try
                {
                    foreach (var b in plan.Batches)
                    {
                        var batch = Batch.Create(Data.Examples, b, staticBatch, transform.Options.LabelMode, transform.ClsId, transform.SepId, transform.PadId, device);
                        try
                        {
                            await channel.Writer.WriteAsync(batch, stop.Token).ConfigureAwait(false);
                        }
                        catch
                        {
                            batch.Dispose();
                            throw;
                        }
                    }

                    channel.Writer.Complete();
                }
                catch (Exception e)
                {
                    channel.Writer.Complete(e is OperationCanceledException ? null : e);
                }
            },
            CancellationToken.None);

        try
        {
            while (true)
            {
                Batch? next = null;
                try
                {
                    if (!channel.Reader.WaitToReadAsync(cancellation).AsTask().GetAwaiter().GetResult())
                    {
                        break;
                    }

                    channel.Reader.TryRead(out next);
                }
                catch (ChannelClosedException e) when (e.InnerException is not null)
                {
                    throw e.InnerException;
                }

                if (next is not null)
                {
                    yield return next;
                }
            }
        }
        finally
        {
            stop.Cancel();
            producer.GetAwaiter().GetResult();
            while (channel.Reader.TryRead(out var left))
            {
                left.Dispose();
            }
        }
    }
}
