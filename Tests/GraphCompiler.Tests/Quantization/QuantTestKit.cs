using static TorchSharp.torch;

namespace GraphCompiler.Tests.Quantization;

/// <summary>Seeded tensors from a private generator, so these tests never draw from (or disturb) torch's global RNG.</summary>
internal sealed class Seeded
{
    private readonly TorchSharp.torch.Generator _generator;

    public Seeded(ulong seed) => _generator = new TorchSharp.torch.Generator(seed);

    /// <summary>Same shape, dtype and values (TorchSharp's <c>equal</c> is the element-wise comparison).</summary>
    public static bool Same(Tensor a, Tensor b) => a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    public Tensor Normal(params long[] shape) => randn(shape, generator: _generator);

    /// <summary>Uniform in [low, high).</summary>
    public Tensor Uniform(double low, double high, params long[] shape) => rand(shape, generator: _generator).mul_(high - low).add_(low);

    /// <summary>Uniform integers in [low, high) as int8.</summary>
    public Tensor Int8(long low, long high, params long[] shape) =>
        randint(low, high, shape, ScalarType.Int8, generator: _generator);
}
