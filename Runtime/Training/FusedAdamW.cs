using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Training;

/// <summary>torch's AdamW with each parameter's update as one pass (<see cref="CpuTrainingLoops.AdamWStep"/>) where the
/// parameter, its gradient and moments are contiguous CPU float32 tensors; anything else (other devices, amsgrad,
/// maximize) takes torch's own step. The state is AdamW's (step, exp_avg, exp_avg_sq), saved and loaded by its code;
/// TorchSharp records the optimizer's type name in the stream, so a checkpoint written by torch's AdamW does not load
/// into this one (nor the reverse).</summary>
public sealed class FusedAdamW : AdamW
{
    public FusedAdamW(IEnumerable<ParamGroup> groups, double lr, double beta1, double beta2, double eps, double weightDecay)
        : base(groups, lr, beta1, beta2, eps, weightDecay)
    {
    }

    public override Tensor step(Func<Tensor>? closure = null)
    {
        if (!ParamGroups.Cast<ParamGroup>().All(Fusable))
        {
            return base.step(closure!);
        }

        return _step<ParamGroup>(group =>
        {
            var options = (Options)group.Options;
            foreach (var param in group.Parameters)
            {
                using var grad = param.grad;
                if (grad is null)
                {
                    continue;
                }

                var state = (State)_state[param.Handle];
                state.step += 1;
                CpuTrainingLoops.AdamWStep(param, grad, state.exp_avg, state.exp_avg_sq, options.LearningRate!.Value, options.beta1!.Value,
                    options.beta2!.Value, options.eps!.Value, options.weight_decay!.Value, state.step);
            }
        }, closure!);
    }

    private bool Fusable(ParamGroup group)
    {
        var options = (Options)group.Options;
        return options.amsgrad != true && options.maximize != true && group.Parameters.All(p =>
        {
            using var grad = p.grad;
            var state = (State)_state[p.Handle];
            return grad is null || CpuTrainingLoops.AppliesElementwise(p, grad, state.exp_avg, state.exp_avg_sq);
        });
    }
}
