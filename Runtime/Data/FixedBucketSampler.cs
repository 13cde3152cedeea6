namespace GraphCompiler.Runtime.Data;

/// <summary>What to do with the rows that do not fill a last batch of the static batch size.</summary>
public enum LastBatch
{
    /// <summary>Pad to the static batch size with filler rows; <see cref="Batch.RowMask"/> and
    /// <see cref="Batch.Rows"/> say which rows are real. Every batch then has one of the model's compiled shapes.</summary>
    Pad,
    /// <summary>Emit a smaller batch (needs a model that accepts that batch size).</summary>
    Keep,
}

/// <summary>One batch of a plan: the sequence-length bucket it is padded to and the indices of its examples.</summary>
public sealed record BucketBatch(int Seq, int[] Indices);

/// <summary>The batches of one epoch and what their padding costs. <see cref="PaddingRatio"/> is the share of token
/// slots (batch × seq over all batches, filler rows included) that hold padding.</summary>
public sealed record BatchPlan(IReadOnlyList<BucketBatch> Batches, int BatchSize, long RealTokens, long TokenSlots, int FillerRows)
{
    public double PaddingRatio => TokenSlots == 0 ? 0 : 1.0 - ((double)RealTokens / TokenSlots);

    public override string ToString()
    {
        var perBucket = string.Join(", ", Batches.GroupBy(b => b.Seq).OrderBy(g => g.Key).Select(g => $"{g.Key}: {g.Count()}"));
        return $"{Batches.Count} batches of {BatchSize} (per seq bucket {perBucket}), {FillerRows} filler rows, padding {PaddingRatio:P1} of {TokenSlots} token slots";
    }
}

/// <summary>GluonNLP's <c>FixedBucketSampler</c> shaped for static shapes: each example goes to the smallest of the
/// model's sequence-length buckets that holds it, and a batch is padded to its bucket (not to its longest example).
/// Within a bucket the order is shuffled with a seeded generator (seed + epoch); the rows that do not fill a batch
/// in one bucket move up to the next bucket rather than making a partial batch there, so an epoch has at most one
/// partial batch, which takes the smallest bucket that holds its longest row and is then padded or kept
/// (<see cref="LastBatch"/>). With shuffling, the order of batches is shuffled too.</summary>
public sealed class FixedBucketSampler
{
    private readonly IReadOnlyList<int> _lengths;
    private readonly int[] _buckets;

    public FixedBucketSampler(IReadOnlyList<int> lengths, IEnumerable<int> seqBuckets, int batchSize, bool shuffle = true, int seed = 0, LastBatch lastBatch = LastBatch.Pad)
    {
        _buckets = seqBuckets.Distinct().Order().ToArray();
        if (_buckets.Length == 0 || _buckets[0] <= 0)
        {
            throw new ArgumentException("need at least one positive sequence-length bucket", nameof(seqBuckets));
        }

        if (batchSize <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(batchSize), "batch size must be positive");
        }

        for (var i = 0; i < lengths.Count; i++)
        {
            if (lengths[i] > _buckets[^1] || lengths[i] <= 0)
            {
                throw new ArgumentException(
                    $"example {i} has {lengths[i]} tokens; the buckets hold 1 to {_buckets[^1]}. Set the transform's MaxLength to at most the largest bucket.",
                    nameof(lengths));
            }
        }

        _lengths = lengths;
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        LastBatch = lastBatch;
    }

    /// <summary>A sampler over the static shapes a compiled model has: its largest batch size and that batch's sequence
    /// lengths. A model compiled for several batch sizes (e.g. 32 for training, 1 for serving) trains on the largest:
    /// smaller ones are inference shapes.</summary>
    public static FixedBucketSampler ForModel(IGraphModule model, IReadOnlyList<int> lengths, bool shuffle = true, int seed = 0, LastBatch lastBatch = LastBatch.Pad)
    {
        if (model.Buckets.Count == 0)
        {
            throw new ArgumentException($"Model '{model.ModelName}' has no static shape buckets.", nameof(model));
        }

        var batch = model.Buckets.Max(b => b.Batch);
        return new FixedBucketSampler(lengths, model.Buckets.Where(b => b.Batch == batch).Select(b => b.Seq), batch, shuffle, seed, lastBatch);
    }

    public IReadOnlyList<int> SeqBuckets => _buckets;

    public int BatchSize { get; }

    public bool Shuffle { get; }

    public int Seed { get; }

    public LastBatch LastBatch { get; }

    /// <summary>The smallest bucket that holds <paramref name="length"/> tokens.</summary>
    public int BucketOf(int length)
    {
        foreach (var b in _buckets)
        {
            if (length <= b)
            {
                return b;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(length), $"{length} tokens exceed the largest bucket {_buckets[^1]}");
    }

    /// <summary>The batches of epoch <paramref name="epoch"/>; the same seed and epoch give the same plan.</summary>
    public BatchPlan Plan(int epoch = 0)
    {
        // Not HashCode.Combine: .NET randomizes it per process, so runs with the same seed shuffled differently.
        var random = new Random((int)((((long)Seed * 1_000_003L) + epoch) & int.MaxValue));
        var byBucket = _buckets.ToDictionary(b => b, _ => new List<int>());
        for (var i = 0; i < _lengths.Count; i++)
        {
            byBucket[BucketOf(_lengths[i])].Add(i);
        }

        var batches = new List<BucketBatch>();
        var carry = new List<int>();
        foreach (var seq in _buckets)
        {
            var members = byBucket[seq];
            if (Shuffle)
            {
                var array = members.ToArray();
                random.Shuffle(array);
                members = [.. array];
            }

            var pool = carry.Concat(members).ToList();
            var full = pool.Count / BatchSize * BatchSize;
            for (var start = 0; start < full; start += BatchSize)
            {
                batches.Add(new BucketBatch(seq, pool.GetRange(start, BatchSize).ToArray()));
            }

            carry = pool.GetRange(full, pool.Count - full);
        }

        if (Shuffle)
        {
            var array = batches.ToArray();
            random.Shuffle(array);
            batches = [.. array];
        }

        var fillerRows = 0;
        if (carry.Count > 0)
        {
            batches.Add(new BucketBatch(BucketOf(carry.Max(i => _lengths[i])), carry.ToArray()));
            fillerRows = LastBatch == LastBatch.Pad ? BatchSize - carry.Count : 0;
        }

        long real = 0, slots = 0;
        foreach (var batch in batches)
        {
            foreach (var i in batch.Indices)
            {
                real += _lengths[i];
            }

            slots += (long)batch.Seq * (LastBatch == LastBatch.Pad ? BatchSize : batch.Indices.Length);
        }

        return new BatchPlan(batches, BatchSize, real, slots, fillerRows);
    }
}
