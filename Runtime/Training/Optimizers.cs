using GraphCompiler.Runtime.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Training;

/// <summary>Adam / AdamW over parameter groups: decayed, and not decayed (biases and LayerNorm weights, as BERT's
/// recipe), and with layer-wise learning-rate decay one pair per depth.</summary>
public static class Optimizers
{
    /// <summary>Whether weight decay applies to the parameter named <paramref name="name"/>: not to biases (names
    /// ending ".bias") nor LayerNorm parameters (names containing "LayerNorm").</summary>
    public static bool Decays(string name) =>
        !name.EndsWith(".bias", StringComparison.Ordinal) && name != "bias" && !name.Contains("LayerNorm", StringComparison.Ordinal);

    /// <summary>The parameter names of each group: (decayed, not decayed), trainable parameters only, in module order.</summary>
    public static (IReadOnlyList<string> Decayed, IReadOnlyList<string> NotDecayed) Groups(nn.Module model)
    {
        var named = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        return (named.Where(p => Decays(p.name)).Select(p => p.name).ToList(), named.Where(p => !Decays(p.name)).Select(p => p.name).ToList());
    }

    /// <summary>How far below the top a parameter sits, for layer-wise learning-rate decay: encoder layer i (names
    /// containing "layer.i.") is <paramref name="layers"/> − i, the embeddings <paramref name="layers"/> + 1, everything
    /// else (pooler, classifier head) 0.</summary>
    public static int DepthFromTop(string name, int layers)
    {
        var layer = CheckpointNames.EncoderLayer(name);
        if (layer >= 0)
        {
            return layers - layer;
        }

        return name.StartsWith("embeddings.", StringComparison.Ordinal) || name.Contains(".embeddings.", StringComparison.Ordinal) ? layers + 1 : 0;
    }

    /// <summary>The parameter groups of <paramref name="options"/>, in order: for each depth from the top (one depth
    /// only when <see cref="TrainerOptions.LayerDecay"/> is 1), the decayed parameters then the not-decayed ones, each
    /// with its weight decay and its learning-rate scale <c>LayerDecay^depth</c>. Empty groups are left out.</summary>
    public static IReadOnlyList<OptimizerGroup> Plan(nn.Module model, TrainerOptions options)
    {
        var named = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        var layers = named.Select(p => CheckpointNames.EncoderLayer(p.name)).DefaultIfEmpty(-1).Max() + 1;
        var layered = options.LayerDecay != 1.0;
        return named
            .GroupBy(p => (Depth: layered ? DepthFromTop(p.name, layers) : 0, Decays: Decays(p.name)))
            .OrderBy(g => g.Key.Depth).ThenBy(g => g.Key.Decays ? 0 : 1)
            .Select(g => new OptimizerGroup(
                g.Select(p => p.name).ToList(),
                g.Select(p => p.parameter).ToList(),
                g.Key.Decays ? options.WeightDecay : 0,
                Math.Pow(options.LayerDecay, g.Key.Depth)))
            .ToList();
    }

    /// <summary>The optimizer of <paramref name="options"/> over the groups of <paramref name="plan"/> (<see cref="Plan"/>).
    /// AdamW is <see cref="FusedAdamW"/> (torch's update, one pass per parameter); Adam is torch's.</summary>
    public static OptimizerHelper Create(IReadOnlyList<OptimizerGroup> plan, TrainerOptions options)
    {
        var (lr, b1, b2, eps, wd) = (options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay);
        if (options.Optimizer == OptimizerKind.AdamW)
        {
            return new FusedAdamW(plan.Select(g => new AdamW.ParamGroup(g.Parameters, lr * g.LearningRateScale, b1, b2, eps, g.WeightDecay)), lr, b1, b2, eps, wd);
        }

        return optim.Adam(plan.Select(g => new Adam.ParamGroup(g.Parameters, lr * g.LearningRateScale, b1, b2, eps, g.WeightDecay)), lr, b1, b2, eps, wd);
    }

    /// <summary>The weight decay of each parameter group, in order.</summary>
    public static IReadOnlyList<double> GroupWeightDecays(optim.Optimizer optimizer) =>
        optimizer.ParamGroups.Cast<ParamGroup>().Select(g => g.Options switch
        {
            Adam.Options a => a.weight_decay ?? 0,
            AdamW.Options w => w.weight_decay ?? 0,
            _ => double.NaN,
        }).ToList();

    /// <summary>Sets each group's rate to <paramref name="lr"/> times its scale (<see cref="OptimizerGroup.LearningRateScale"/>,
    /// in <see cref="Plan"/>'s order; all 1 when <paramref name="scales"/> is null).</summary>
    public static void SetLearningRate(optim.Optimizer optimizer, double lr, IReadOnlyList<double>? scales = null)
    {
        var i = 0;
        foreach (var g in optimizer.ParamGroups)
        {
            g.LearningRate = lr * (scales?[i] ?? 1.0);
            i++;
        }
    }
}

/// <summary>One optimizer parameter group: its parameters (and their names), weight decay, and the factor its learning
/// rate is of the schedule's.</summary>
public sealed record OptimizerGroup(IReadOnlyList<string> Names, IReadOnlyList<Parameter> Parameters, double WeightDecay, double LearningRateScale);
