using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>The kernels of generated backward code (autodiff's gradient ops) and of training forwards.</summary>
public static partial class Kernels
{
    /// <summary>An inverted-dropout mask: 0 with probability p, 1/(1−p) otherwise. Saved by the forward so the backward
    /// applies the same one.</summary>
    public static Tensor DropoutMask(Tensor like, double p)
    {
        if (p < 1 && CpuTrainingLoops.AppliesElementwise(like))
        {
            return CpuTrainingLoops.DropoutMask(like, p);
        }

        using var keep = full_like(like, 1 - p);
        var mask = bernoulli(keep);
        return mask.div_(1 - p);
    }

    /// <summary>Sums a broadcast gradient back down to an operand's shape.</summary>
    public static Tensor SumTo(Tensor g, params long[] shape)
    {
        var lead = g.dim() - shape.Length;
        var dims = new List<long>();
        for (var i = 0; i < g.dim(); i++)
        {
            if (i < lead || (shape[i - lead] == 1 && g.shape[i] != 1))
            {
                dims.Add(i);
            }
        }

        using var summed = g.sum(dims.ToArray(), keepdim: true);
        return summed.reshape(shape);
    }

    /// <summary>dW[out, in] = Σ over leading dims of dy[..., out]ᵀ · x[..., in].</summary>
    public static Tensor LinearWeightGrad(Tensor dy, Tensor x)
    {
        using var dyFlat = dy.reshape(-1, dy.shape[^1]);
        using var xFlat = x.reshape(-1, x.shape[^1]);
        using var dyT = dyFlat.t();
        return dyT.mm(xFlat);
    }

    /// <summary>d gelu(x) = Φ(x) + x·φ(x) (erf form).</summary>
    public static Tensor GeluGrad(Tensor dy, Tensor x)
    {
        if (CpuTrainingLoops.AppliesElementwise(dy, x) && dy.shape.SequenceEqual(x.shape))
        {
            return CpuTrainingLoops.GeluGrad(dy, x);
        }

        using var scope = NewDisposeScope();
        var cdf = (x * (1 / Math.Sqrt(2))).erf_().add_(1).mul_(0.5);
        var pdf = (x * x).mul_(-0.5).exp_().mul_(1 / Math.Sqrt(2 * Math.PI));
        return dy.mul(cdf.add_(pdf.mul_(x))).MoveToOuterDisposeScope();
    }

    /// <summary>d tanh = 1 − y², from the saved output.</summary>
    public static Tensor TanhGrad(Tensor dy, Tensor y)
    {
        using var ySquared = y * y;
        using var slope = ySquared.neg_().add_(1);
        return dy.mul(slope);
    }

    /// <summary>Softmax backward over the last dimension from the saved output: y·(dy − Σ dy·y).</summary>
    public static Tensor SoftmaxGrad(Tensor dy, Tensor y)
    {
        if (CpuTrainingLoops.Applies(y.shape[^1], dy, y) && dy.shape.SequenceEqual(y.shape))
        {
            return CpuTrainingLoops.SoftmaxGrad(dy, y, null, 1f);
        }

        using var scope = NewDisposeScope();
        var dot = (dy * y).sum(-1, keepdim: true);
        return (dy - dot).mul_(y).MoveToOuterDisposeScope();
    }

    /// <summary>scale·SoftmaxGrad(dy ∘ gate, y): attention's backward through its dropout mask and score scale.</summary>
    public static Tensor SoftmaxGrad(Tensor dy, Tensor y, Tensor gate, double scale)
    {
        if (CpuTrainingLoops.Applies(y.shape[^1], dy, y, gate) && dy.shape.SequenceEqual(y.shape) && gate.shape.SequenceEqual(y.shape))
        {
            return CpuTrainingLoops.SoftmaxGrad(dy, y, gate, (float)scale);
        }

        using var gated = dy * gate;
        using var grad = SoftmaxGrad(gated, y);
        return grad.mul(scale);
    }

    /// <summary>LayerNorm backward for the input, recomputing mean and rstd from the saved input.</summary>
    public static Tensor LayerNormInputGrad(Tensor dy, Tensor x, Tensor weight, double eps)
    {
        if (CpuTrainingLoops.Applies(x.shape[^1], dy, x, weight) && dy.shape.SequenceEqual(x.shape))
        {
            return CpuTrainingLoops.LayerNormInputGrad(dy, x, weight, eps);
        }

        using var scope = NewDisposeScope();
        var (xhat, rstd) = Normalize(x, eps);
        var dxhat = dy * weight;
        var meanD = dxhat.mean(new long[] { -1 }, keepdim: true);
        var meanDx = (dxhat * xhat).mean(new long[] { -1 }, keepdim: true);
        return (dxhat - meanD - xhat * meanDx).mul_(rstd).MoveToOuterDisposeScope();
    }

    /// <summary>LayerNorm backward for the gain: Σ dy·x̂ over all leading dimensions.</summary>
    public static Tensor LayerNormWeightGrad(Tensor dy, Tensor x, double eps)
    {
        if (CpuTrainingLoops.Applies(x.shape[^1], dy, x) && dy.shape.SequenceEqual(x.shape))
        {
            return CpuTrainingLoops.LayerNormWeightGrad(dy, x, eps);
        }

        using var scope = NewDisposeScope();
        var (xhat, _) = Normalize(x, eps);
        return (dy * xhat).reshape(-1, x.shape[^1]).sum(new long[] { 0 }).MoveToOuterDisposeScope();
    }

    /// <summary>RMSNorm backward for the input: with x̂ = x·r, r = (mean(x²) + eps)^−½ and g = dy·weight,
    /// dx = r·(g − x̂·mean(g·x̂)) over the last dimension.</summary>
    public static Tensor RmsNormInputGrad(Tensor dy, Tensor x, Tensor weight, double eps)
    {
        using var scope = NewDisposeScope();
        var rstd = (x * x).mean(new long[] { -1 }, keepdim: true).add_(eps).rsqrt_();
        var xhat = x * rstd;
        var g = dy * weight;
        var meanGx = (g * xhat).mean(new long[] { -1 }, keepdim: true);
        return g.sub_(xhat.mul_(meanGx)).mul_(rstd).MoveToOuterDisposeScope();
    }

    /// <summary>RMSNorm backward for the gain: Σ dy·x̂ over all leading dimensions.</summary>
    public static Tensor RmsNormWeightGrad(Tensor dy, Tensor x, double eps)
    {
        using var scope = NewDisposeScope();
        var rstd = (x * x).mean(new long[] { -1 }, keepdim: true).add_(eps).rsqrt_();
        return (dy * x).mul_(rstd).reshape(-1, x.shape[^1]).sum(new long[] { 0 }).MoveToOuterDisposeScope();
    }

    /// <summary>d silu(x) = σ(x)·(1 + x·(1 − σ(x))).</summary>
    public static Tensor SiluGrad(Tensor dy, Tensor x)
    {
        using var scope = NewDisposeScope();
        var s = x.sigmoid();
        var slope = s.neg().add_(1).mul_(x).add_(1).mul_(s);
        return dy.mul(slope).MoveToOuterDisposeScope();
    }

    private static (Tensor Xhat, Tensor Rstd) Normalize(Tensor x, double eps)
    {
        var mean = x.mean(new long[] { -1 }, keepdim: true);
        var centered = x - mean;
        var variance = (centered * centered).mean(new long[] { -1 }, keepdim: true);
        var rstd = variance.add_(eps).rsqrt_();
        return (centered * rstd, rstd);
    }

    /// <summary>Gradient of select: zeros with dy placed at the index.</summary>
    public static Tensor SelectGrad(Tensor dy, long dim, long index, long size)
    {
        var shape = dy.shape.ToList();
        shape.Insert((int)dim, size);
        var result = zeros(shape.ToArray(), dy.dtype, dy.device);
        using var slot = result.select(dim, index);
        slot.copy_(dy);
        return result;
    }

    /// <summary>Gradient of slice: zeros with dy placed at [start, start + len).</summary>
    public static Tensor SliceGrad(Tensor dy, long dim, long start, long size)
    {
        var shape = dy.shape.ToArray();
        shape[dim] = size;
        var result = zeros(shape, dy.dtype, dy.device);
        using var slot = result.narrow(dim, start, dy.shape[dim]);
        slot.copy_(dy);
        return result;
    }

    /// <summary>Gradient of an embedding table: rows of dy added at their ids.</summary>
    public static Tensor EmbeddingGrad(Tensor dy, Tensor ids, long rows)
    {
        var dim = dy.shape[^1];
        var result = zeros(new[] { rows, dim }, dy.dtype, dy.device);
        using var flatIds = ids.reshape(-1);
        using var flatDy = dy.reshape(-1, dim);
        result.index_add_(0, flatIds, flatDy, 1);
        return result;
    }

    /// <summary>Gradient of the first-rows view of a table.</summary>
    public static Tensor RowsGrad(Tensor dy, long rows) => SliceGrad(dy, 0, 0, rows);

    /// <summary>Attention backward (default scale 1/√d, additive mask, no dropout), recomputing the probabilities:
    /// dq, dk, dv stacked along a new leading dimension.</summary>
    public static Tensor AttentionGrad(Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var scale = 1 / Math.Sqrt(q.shape[^1]);
        var probs = softmax(matmul(q, k.transpose(-2, -1)).mul_(scale).add_(mask), -1);
        var dv = matmul(probs.transpose(-2, -1), dOut);
        var dProbs = matmul(dOut, v.transpose(-2, -1));
        var dScores = SoftmaxGrad(dProbs, probs).mul_(scale);
        var dq = matmul(dScores, k);
        var dk = matmul(dScores.transpose(-2, -1), q);
        return stack(new[] { dq, dk, dv }, 0).MoveToOuterDisposeScope();
    }
}
