using BenchmarkDotNet.Attributes;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Benchmarks.Micro;

/// <summary>One MiniLM GEMM (batch 32 × 128 tokens, hidden 384): the fp32 kernel against the int8 one with a static
/// (calibrated) input scale, as the generated fp32 and int8 modules call them.</summary>
public class LinearBenchmarks : IDisposable
{
    private Tensor _x = null!;
    private Tensor _weight = null!;
    private Tensor _bias = null!;
    private Tensor _weightI8 = null!;
    private Tensor _weightScale = null!;
    private Tensor _inputScale = null!;

    /// <summary>The packed QKV projection, the FFN up and down projections.</summary>
    [Params("qkv 384→1152", "ffn up 384→1536", "ffn down 1536→384")]
    public string Gemm { get; set; } = "qkv 384→1152";

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(Environment.ProcessorCount);
        manual_seed(0);
        var (inFeatures, outFeatures) = Gemm switch
        {
            "qkv 384→1152" => (384, 1152),
            "ffn up 384→1536" => (384, 1536),
            "ffn down 1536→384" => (1536, 384),
            _ => throw new ArgumentException(Gemm),
        };
        _x = randn(32, 128, inFeatures);
        _weight = randn(outFeatures, inFeatures) / Math.Sqrt(inFeatures);
        _bias = randn(outFeatures) * 0.1;
        (_weightI8, _weightScale) = Int8Weights.QuantizePerChannel(_weight);
        _inputScale = _x.abs().max() / 127f;
    }

    [Benchmark(Baseline = true)]
    public void Fp32Linear()
    {
        using var _ = no_grad();
        using var y = Kernels.Linear(_x, _weight, _bias);
    }

    [Benchmark]
    public void Int8QuantizedLinearStatic()
    {
        using var _ = no_grad();
        using var y = Kernels.QuantizedLinear(_x, _inputScale, _weightI8, _weightScale, _bias, gelu: false, ActivationQuantization.Static);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        foreach (var t in new[] { _x, _weight, _bias, _weightI8, _weightScale, _inputScale })
        {
            t?.Dispose();
        }

        GC.SuppressFinalize(this);
    }
}

/// <summary>The fused residual add + LayerNorm at MiniLM's shape ([32, 128, 384], eps 1e-12).</summary>
public class AddLayerNormBenchmarks : IDisposable
{
    private Tensor _a = null!;
    private Tensor _b = null!;
    private Tensor _weight = null!;
    private Tensor _bias = null!;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(Environment.ProcessorCount);
        manual_seed(0);
        (_a, _b) = (randn(32, 128, 384), randn(32, 128, 384));
        (_weight, _bias) = (ones(384), zeros(384));
    }

    [Benchmark]
    public void AddLayerNorm()
    {
        using var _ = no_grad();
        using var y = Kernels.AddLayerNorm(_a, _b, _weight, _bias, 1e-12);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        foreach (var t in new[] { _a, _b, _weight, _bias })
        {
            t?.Dispose();
        }

        GC.SuppressFinalize(this);
    }
}

/// <summary>Scaled dot-product attention with a length mask at MiniLM's shape: batch 32 × 12 heads × 128 tokens × 32 per head.</summary>
public class AttentionBenchmarks : IDisposable
{
    private Tensor _q = null!;
    private Tensor _k = null!;
    private Tensor _v = null!;
    private Tensor _mask = null!;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(Environment.ProcessorCount);
        manual_seed(0);
        (_q, _k, _v) = (randn(32, 12, 128, 32), randn(32, 12, 128, 32), randn(32, 12, 128, 32));
        using var lengths = randint(96, 129, new long[] { 32 });
        _mask = Kernels.LengthMask(lengths, 128, ScalarType.Float32);
    }

    [Benchmark]
    public void Attention()
    {
        using var _ = no_grad();
        using var y = Kernels.Attention(_q, _k, _v, _mask, 0.1, training: false);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        foreach (var t in new[] { _q, _k, _v, _mask })
        {
            t?.Dispose();
        }

        GC.SuppressFinalize(this);
    }
}
