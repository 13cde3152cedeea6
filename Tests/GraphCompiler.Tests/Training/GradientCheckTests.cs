using GraphCompiler.Runtime;
using GraphCompiler.Tests.Declarations;
using TorchSharp;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Training;

/// <summary>The generated backward against libtorch autograd recording the same training forward (float64, max
/// relative error ≤ 1e-6), and against central finite differences on small shapes. Dropout masks are drawn once per
/// forward and saved, so the same seed gives the same masks in both paths and in every finite-difference evaluation.</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
[Trait(VectorWidths.Category, VectorWidths.Models)]
public class GradientCheckTests(ITestOutputHelper output)
{
    private const double AutogradTolerance = 1e-6;   // relative to the largest gradient entry of each tensor
    private const double FiniteDifferenceTolerance = 1e-5;

    public static TheoryData<string, int> Models => new()
    {
        { "grad_ops", 3 }, { "grad_ops", 5 }, { "grad_bert", 6 }, { "grad_bert", 8 }, { "grad_bert", 16 }, { "grad_bert_meanpool", 6 }, { "grad_bert_meanpool", 8 },
        { "grad_llama", 5 }, { "grad_llama", 8 },
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void GeneratedBackwardEqualsLibtorchAutograd(string model, int seq)
    {
        using var scope = NewDisposeScope();
        var (module, inputs) = Create(model, seq);
        using var _ = module;
        var weights = LossWeights(module, inputs);

        var generated = Gradients(module, inputs, weights, GradientMode.Generated, seed: 7);
        var reference = Gradients(module, inputs, weights, GradientMode.Autograd, seed: 7);
        Assert.Equal(reference.Keys.OrderBy(k => k), generated.Keys.OrderBy(k => k));
        var worst = 0.0;
        foreach (var (name, expected) in reference)
        {
            var scale = Math.Max(expected.abs().max().item<double>(), 1e-12);
            var error = (generated[name] - expected).abs().max().item<double>() / scale;
            worst = Math.Max(worst, error);
            Assert.True(error <= AutogradTolerance, $"{model} 2×{seq}: ∂loss/∂{name} differs from autograd by {error:E2} (relative)");
        }

        output.WriteLine($"{model} 2×{seq}: {reference.Count} parameter gradients, max relative error vs autograd {worst:E2}");
    }

    [Theory]
    [InlineData("grad_ops", 3)]
    [InlineData("grad_bert", 6)]
    [InlineData("grad_bert_meanpool", 6)]
    [InlineData("grad_llama", 5)]
    public void GeneratedBackwardEqualsFiniteDifferences(string model, int seq)
    {
        using var scope = NewDisposeScope();
        var (module, inputs) = Create(model, seq);
        using var _ = module;
        var weights = LossWeights(module, inputs);
        var gradients = Gradients(module, inputs, weights, GradientMode.Generated, seed: 11);
        var generator = new Random(3);
        var worst = 0.0;
        var checkedEntries = 0;
        foreach (var (name, parameter) in module.named_parameters())
        {
            using var noGrad = no_grad();
            var flat = parameter.detach().view(-1);
            var grad = gradients[name].view(-1);
            for (var probe = 0; probe < 3; probe++)
            {
                var i = generator.NextInt64(flat.shape[0]);
                var original = flat[i].item<double>();
                const double h = 1e-6;
                flat[i] = original + h;
                var plus = Loss(module, inputs, weights, seed: 11);
                flat[i] = original - h;
                var minus = Loss(module, inputs, weights, seed: 11);
                flat[i] = original;
                var numeric = (plus - minus) / (2 * h);
                var analytic = grad[i].item<double>();
                var error = Math.Abs(numeric - analytic) / Math.Max(1e-3, Math.Abs(numeric) + Math.Abs(analytic));
                worst = Math.Max(worst, error);
                checkedEntries++;
                Assert.True(error <= FiniteDifferenceTolerance, $"{model}: ∂loss/∂{name}[{i}] generated {analytic:E6}, finite difference {numeric:E6}");
            }
        }

        output.WriteLine($"{model} 2×{seq}: {checkedEntries} entries, max relative error vs central differences {worst:E2}");
    }

    [Fact]
    public void OneBackwardServesTwoBucketsInFlight()
    {
        // Every bucket runs the same generated body; each autograd node keeps its own bucket's sizes. Two forwards at
        // different sequence lengths, then one backward through both, must still match autograd.
        using var scope = NewDisposeScope();
        var (module, shortInputs) = Create("grad_bert", 6);
        using var _ = module;
        var (twin, longInputs) = Create("grad_bert", 16);
        twin.Dispose();
        var (shortWeights, longWeights) = (LossWeights(module, shortInputs), LossWeights(module, longInputs));

        Dictionary<string, Tensor> Both(GradientMode mode)
        {
            module.train();
            ((IGraphModule)module).GradientMode = mode;
            module.zero_grad();
            manual_seed(7);
            var loss = (Forward(module, shortInputs) * shortWeights).sum() + (Forward(module, longInputs) * longWeights).sum();
            loss.backward();
            return module.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter.grad!.detach().clone());
        }

        var generated = Both(GradientMode.Generated);
        var reference = Both(GradientMode.Autograd);
        foreach (var (name, expected) in reference)
        {
            var scale = Math.Max(expected.abs().max().item<double>(), 1e-12);
            var error = (generated[name] - expected).abs().max().item<double>() / scale;
            Assert.True(error <= AutogradTolerance, $"2×6 and 2×16 in one graph: ∂loss/∂{name} differs from autograd by {error:E2} (relative)");
        }
    }

    [Fact]
    public void DropoutMaskIsTheSameInForwardAndBackward()
    {
        // y = dropout(x) = x·mask, so ∂(Σy)/∂x must be exactly the mask the forward applied: y/x.
        using var scope = NewDisposeScope();
        using var module = new DropoutModelModule();
        module.train();
        var x = (rand(4, 32, 64) + 0.5).requires_grad_(true);
        manual_seed(5);
        var y = module.call(x);
        y.sum().backward();
        var mask = y.detach() / x.detach();
        Assert.True(allclose(x.grad!, mask, rtol: 1e-6, atol: 1e-7), "the backward's dropout mask differs from the forward's");
        var dropped = mask.eq(0).to(ScalarType.Float64).mean().item<double>();
        Assert.InRange(dropped, 0.25, 0.35); // p = 0.3
    }

    private static (nn.Module Module, Tensor[] Inputs) Create(string model, int seq)
    {
        manual_seed(42);
        nn.Module module = model switch
        {
            "grad_ops" => new GradOpsModelModule(),
            "grad_bert" => new GradBertModelModule(),
            "grad_bert_meanpool" => new GradBertMeanPoolModelModule(),
            "grad_llama" => new GradLlamaModelModule(),
            _ => throw new ArgumentException(model),
        };
        using (no_grad())
        {
            foreach (var (_, p) in module.named_parameters())
            {
                p.copy_(randn_like(p) * 0.5);
            }
        }

        var lengths = tensor(new long[] { seq, seq - 2 });
        Tensor[] inputs = model == "grad_ops"
            ? new[] { randn(2, seq, 8, dtype: ScalarType.Float64), randn(2, seq, 8, dtype: ScalarType.Float64), lengths }
            : model == "grad_llama"
            ? new[] { randn(2, seq, 8, dtype: ScalarType.Float64), lengths }
            : new[] { randn(2, seq, 8, dtype: ScalarType.Float64), randint(0, 20, new long[] { 2, seq }), randint(0, 2, new long[] { 2, seq }), lengths };
        foreach (var t in inputs)
        {
            t.MoveToOuterDisposeScope();
        }

        return (module, inputs);
    }

    private static Tensor Forward(nn.Module module, Tensor[] inputs) => module switch
    {
        GradOpsModelModule m => m.call(inputs[0], inputs[1], inputs[2]),
        GradLlamaModelModule m => m.call(inputs[0], inputs[1]),
        GradBertModelModule m => m.call(inputs[0], inputs[1], inputs[2], inputs[3]),
        GradBertMeanPoolModelModule m => m.call(inputs[0], inputs[1], inputs[2], inputs[3]),
        _ => throw new ArgumentException(module.GetName()),
    };

    private static Tensor LossWeights(nn.Module module, Tensor[] inputs)
    {
        using var noGrad = no_grad();
        module.eval();
        var shape = Forward(module, inputs).shape;
        return randn(shape, dtype: ScalarType.Float64);
    }

    /// <summary>The training-mode loss with the dropout masks of <paramref name="seed"/>.</summary>
    private static double Loss(nn.Module module, Tensor[] inputs, Tensor weights, int seed)
    {
        module.train();
        manual_seed(seed);
        using var scope = NewDisposeScope();
        return (Forward(module, inputs) * weights).sum().item<double>();
    }

    private static Dictionary<string, Tensor> Gradients(nn.Module module, Tensor[] inputs, Tensor weights, GradientMode mode, int seed)
    {
        module.train();
        ((IGraphModule)module).GradientMode = mode;
        module.zero_grad();
        manual_seed(seed);
        var loss = (Forward(module, inputs) * weights).sum();
        loss.backward();
        return module.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter.grad!.detach().clone());
    }
}
