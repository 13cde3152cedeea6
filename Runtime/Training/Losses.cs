using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Training;

/// <summary>Losses over the real rows of a padded batch: filler rows (row mask false) add nothing, and gradients do
/// not reach them.</summary>
public static class Losses
{
    /// <summary>Sum over real rows of softmax cross-entropy of <paramref name="logits"/> [batch, classes] against
    /// int64 <paramref name="labels"/> [batch]; a scalar of the logits' dtype.</summary>
    public static Tensor CrossEntropySum(Tensor logits, Tensor labels, Tensor rowMask)
    {
        var perRow = nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.None);
        return where(rowMask, perRow, zeros_like(perRow)).sum();
    }

    /// <summary>The mean over real rows (what a single-batch step minimises).</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, Tensor rowMask) =>
        CrossEntropySum(logits, labels, rowMask) / Math.Max(1L, rowMask.sum().item<long>());

    /// <summary>Sum over real rows of the squared error of <paramref name="predictions"/> [batch] or [batch, 1].</summary>
    public static Tensor SquaredErrorSum(Tensor predictions, Tensor targets, Tensor rowMask)
    {
        var flat = predictions.reshape(-1);
        var perRow = (flat - targets.to(flat.dtype)).square();
        return where(rowMask, perRow, zeros_like(perRow)).sum();
    }

    public static Tensor MeanSquaredError(Tensor predictions, Tensor targets, Tensor rowMask) =>
        SquaredErrorSum(predictions, targets, rowMask) / Math.Max(1L, rowMask.sum().item<long>());
}
