using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Data;

/// <summary>A static-shape batch: token ids and segment ids int64 [batch, seq], valid length int64 [batch], label
/// int64 (classification) or float32 (regression) [batch] or none (inference), and which rows are real. The first
/// <see cref="Rows"/> rows are examples; the rest (under <see cref="LastBatch.Pad"/>) are filler rows "[CLS] [SEP]"
/// with valid length 2, label 0 and a false <see cref="RowMask"/>, never all-padding rows (whose attention would be
/// NaN). The batch owns its tensors: dispose it.</summary>
public sealed class Batch : IDisposable
{
    internal Batch(Tensor tokenIds, Tensor segmentIds, Tensor validLength, Tensor? label, Tensor rowMask, int rows, int[] lines)
    {
        TokenIds = tokenIds;
        SegmentIds = segmentIds;
        ValidLength = validLength;
        Label = label;
        RowMask = rowMask;
        Rows = rows;
        Lines = lines;
    }

    public Tensor TokenIds { get; }

    public Tensor SegmentIds { get; }

    public Tensor ValidLength { get; }

    public Tensor? Label { get; }

    /// <summary>bool [batch]: true for real rows.</summary>
    public Tensor RowMask { get; }

    /// <summary>The number of real rows (the first ones).</summary>
    public int Rows { get; }

    /// <summary>The source line of each real row.</summary>
    public IReadOnlyList<int> Lines { get; }

    public long BatchSize => TokenIds.shape[0];

    public long Seq => TokenIds.shape[1];

    /// <summary>Builds the tensors of <paramref name="plan"/>'s batch; <paramref name="staticBatch"/> rows when padding
    /// the last batch (or the batch's own count when 0).</summary>
    public static Batch Create(IReadOnlyList<EncodedExample> examples, BucketBatch plan, int staticBatch, LabelMode labelMode, int clsId, int sepId, int padId, Device? device = null)
    {
        var rows = plan.Indices.Length;
        var n = Math.Max(rows, staticBatch);
        var seq = plan.Seq;
        var ids = new long[n * seq];
        var types = new long[n * seq];
        var lengths = new long[n];
        var labels = new float[n];
        var mask = new bool[n];
        var lines = new int[rows];
        if (padId != 0)
        {
            Array.Fill(ids, padId);
        }

        for (var r = 0; r < n; r++)
        {
            var row = ids.AsSpan(r * seq, seq);
            if (r >= rows)
            {
                row[0] = clsId;
                row[1] = sepId;
                lengths[r] = 2;
                continue;
            }

            var e = examples[plan.Indices[r]];
            if (e.ValidLength > seq)
            {
                throw new ArgumentException($"example at line {e.Line} has {e.ValidLength} tokens, more than the batch's bucket {seq}", nameof(plan));
            }

            for (var j = 0; j < e.ValidLength; j++)
            {
                row[j] = e.TokenIds[j];
                types[(r * seq) + j] = e.SegmentIds[j];
            }

            lengths[r] = e.ValidLength;
            labels[r] = e.Label;
            mask[r] = true;
            lines[r] = e.Line;
        }

        Tensor? label = labelMode switch
        {
            LabelMode.Classification => tensor(labels.Select(l => (long)l).ToArray(), device: device),
            LabelMode.Regression => tensor(labels, device: device),
            _ => null,
        };
        return new Batch(
            tensor(ids, [n, seq], device: device),
            tensor(types, [n, seq], device: device),
            tensor(lengths, device: device),
            label,
            tensor(mask, device: device),
            rows,
            lines);
    }

    public void Dispose()
    {
        TokenIds.Dispose();
        SegmentIds.Dispose();
        ValidLength.Dispose();
        Label?.Dispose();
        RowMask.Dispose();
    }
}
