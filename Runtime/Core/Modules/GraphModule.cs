using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>One static shape a model has a compiled forward for.</summary>
public readonly record struct StaticShapeBucket(int Batch, int Seq)
{
    public override string ToString() => $"{Batch}×{Seq}";
}

/// <summary>A parameter that a pass packed from several checkpoint tensors (e.g. query/key/value → one GEMM weight),
/// concatenated along dimension 0 with the given sizes.</summary>
public sealed record PackedParameter(string Name, IReadOnlyList<string> Parts, IReadOnlyList<long> Sizes);

public enum IrStage
{
    /// <summary>As lowered from the declaration.</summary>
    Lowered,
    /// <summary>After the pass pipeline; what the forward runs.</summary>
    Optimized,
    /// <summary>The training forward (explicit dropout masks).</summary>
    Training,
    /// <summary>The generated backward of the training forward.</summary>
    Backward,
    /// <summary>The inference graph with an observe node before each GEMM the int8 variant quantizes
    /// (<c>ForwardObserved</c>). Empty for a model without [Quantize].</summary>
    Calibration,
    /// <summary>The int8 inference graph (qlinear GEMMs). Empty for a model without [Quantize].</summary>
    Int8,
}

/// <summary>How a generated module differentiates its training forward.</summary>
public enum GradientMode
{
    /// <summary>The compiler's generated backward, as one custom autograd function per forward.</summary>
    Generated,
    /// <summary>libtorch autograd recording the training forward op by op (the reference).</summary>
    Autograd,
}

/// <summary>What every generated module exposes besides its forward.</summary>
public interface IGraphModule
{
    string ModelName { get; }

    IReadOnlyList<StaticShapeBucket> Buckets { get; }

    IReadOnlyList<PackedParameter> PackedParameters { get; }

    /// <summary>Each parameter's declared initializer (a <see cref="ParameterInit"/> name) by parameter name.</summary>
    IReadOnlyDictionary<string, string> ParameterInitializers { get; }

    /// <summary>How training-mode forwards are differentiated.</summary>
    GradientMode GradientMode { get; set; }

    string IrText(IrStage stage);

    /// <summary>The optimized inference graph as symbol JSON (format "graphcompiler-symbol"; see Symbol.SymbolGraph).</summary>
    string SymbolJson { get; }

    /// <summary>"fp32", or "int8" for a generated <c>{Model}Int8Module</c>: both variants of a model share its
    /// <see cref="ModelName"/>, so this tells them apart.</summary>
    string Precision => Precisions.Fp32;
}

/// <summary>The values of <see cref="IGraphModule.Precision"/>.</summary>
public static class Precisions
{
    public const string Fp32 = "fp32";
    public const string Int8 = "int8";
}

/// <summary>Checks of a forward's inputs against its static shape bucket, with errors that name the model, the input
/// and the buckets.</summary>
public static class ShapeGuard
{
    public static ArgumentException NoBucket(string model, long batch, long seq, IReadOnlyList<StaticShapeBucket> buckets) =>
        new($"Model '{model}' has no forward for batch {batch} × sequence length {seq}: it was compiled for " +
            $"{string.Join(", ", buckets)} (batch × seq). Pad the batch to one of these shapes or add the length to [StaticShapes].");

    public static void Check(string model, string input, Tensor tensor, ScalarType dtype, params long[] dims)
    {
        if (tensor.dtype != dtype)
        {
            throw new ArgumentException($"Model '{model}': input '{input}' must be {dtype}, got {tensor.dtype}.", input);
        }

        if (!tensor.shape.SequenceEqual(dims))
        {
            throw new ArgumentException(
                $"Model '{model}': input '{input}' must have shape [{string.Join(", ", dims)}] in this bucket, got [{string.Join(", ", tensor.shape)}].",
                input);
        }
    }
}

/// <summary>Parameter initialisers named by the declaration (Init.*).</summary>
public static class ParameterInit
{
    public const string Zeros = "zeros";
    public const string Ones = "ones";
    public const string Normal = "normal";
    public const string KaimingUniform = "kaiming_uniform";

    /// <summary>BERT's initializer range.</summary>
    public const double NormalStd = 0.02;

    public static Parameter Create(string init, long[] shape, Device? device, ScalarType dtype = ScalarType.Float32)
    {
        using var noGrad = no_grad();
        Tensor data = init switch
        {
            Zeros => zeros(shape, dtype, device),
            Ones => ones(shape, dtype, device),
            Normal => normal(0.0, NormalStd, shape, dtype, device),
            KaimingUniform => KaimingUniformTensor(shape, device, dtype),
            _ => throw new ArgumentException($"unknown initializer '{init}'", nameof(init)),
        };
        return new Parameter(data, requires_grad: true);
    }

    /// <summary>Draws the parameters <paramref name="select"/> picks afresh from their declared initializers, in place (an
    /// optimizer built afterwards sees the same tensors). Returns their names.</summary>
    public static IReadOnlyList<string> Reinitialize(nn.Module module, Func<string, bool> select)
    {
        var graph = module as IGraphModule ?? throw new ArgumentException($"'{module.GetName()}' is not a generated module: its initializers are unknown.", nameof(module));
        var names = new List<string>();
        using var noGrad = no_grad();
        foreach (var (name, parameter) in module.named_parameters())
        {
            if (!select(name))
            {
                continue;
            }

            if (!graph.ParameterInitializers.TryGetValue(name, out var init))
            {
                throw new ArgumentException($"Model '{graph.ModelName}' declares no initializer for parameter '{name}'.", nameof(module));
            }

            using var fresh = Create(init, parameter.shape, parameter.device, parameter.dtype);
            parameter.copy_(fresh);
            names.Add(name);
        }

        return names;
    }

    private static Tensor KaimingUniformTensor(long[] shape, Device? device, ScalarType dtype)
    {
        // torch.nn.Linear's default: U(-1/√fan_in, 1/√fan_in) for a = √5.
        var fanIn = shape.Length > 1 ? shape.Skip(1).Aggregate(1L, (a, b) => a * b) : shape[0];
        var bound = 1.0 / Math.Sqrt(fanIn);
        var values = rand(shape, dtype, device);
        return values.mul_(2 * bound).sub_(bound);
    }
}
