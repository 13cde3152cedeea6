using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Training;

/// <summary>Adam / AdamW over two parameter groups: decayed, and not decayed (biases and LayerNorm weights, as BERT's
/// recipe).</summary>
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

    /// <summary>The optimizer of <paramref name="options"/>: group 0 decayed with <see cref="TrainerOptions.WeightDecay"/>,
    /// group 1 without (an empty group is left out). AdamW is <see cref="FusedAdamW"/> (torch's update, one pass per
    /// parameter); Adam is torch's.</summary>
    public static OptimizerHelper Create(nn.Module model, TrainerOptions options)
    {
        var named = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        var decayed = named.Where(p => Decays(p.name)).Select(p => p.parameter).ToList();
        var plain = named.Where(p => !Decays(p.name)).Select(p => p.parameter).ToList();
        var (lr, b1, b2, eps, wd) = (options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay);
        if (options.Optimizer == OptimizerKind.AdamW)
        {
            var groups = new List<AdamW.ParamGroup>();
            if (decayed.Count > 0)
            {
                groups.Add(new AdamW.ParamGroup(decayed, lr, b1, b2, eps, wd));
            }

            if (plain.Count > 0)
            {
                groups.Add(new AdamW.ParamGroup(plain, lr, b1, b2, eps, 0));
            }

            return new FusedAdamW(groups, lr, b1, b2, eps, wd);
        }

        var adamGroups = new List<Adam.ParamGroup>();
        if (decayed.Count > 0)
        {
            adamGroups.Add(new Adam.ParamGroup(decayed, lr, b1, b2, eps, wd));
        }

        if (plain.Count > 0)
        {
            adamGroups.Add(new Adam.ParamGroup(plain, lr, b1, b2, eps, 0));
        }

        return optim.Adam(adamGroups, lr, b1, b2, eps, wd);
    }

    /// <summary>The weight decay of each parameter group, in order.</summary>
    public static IReadOnlyList<double> GroupWeightDecays(optim.Optimizer optimizer) =>
        optimizer.ParamGroups.Cast<ParamGroup>().Select(g => g.Options switch
        {
            Adam.Options a => a.weight_decay ?? 0,
            AdamW.Options w => w.weight_decay ?? 0,
            _ => double.NaN,
        }).ToList();

    public static void SetLearningRate(optim.Optimizer optimizer, double lr)
    {
        foreach (var g in optimizer.ParamGroups)
        {
            g.LearningRate = lr;
        }
    }
}
