using GraphCompiler.Runtime;
using GraphCompiler.Tests.Infrastructure;
using GraphCompiler.Tests.Quantization;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Runtime;

/// <summary>The packed fp32 GEMM at every vector width (wider than the host's are emulated by the runtime) against a
/// float64 product computed by libtorch, and the rule that picks it over libtorch's linear.</summary>
[Trait(VectorWidths.Category, VectorWidths.Kernels)]
public sealed class FloatGemmTests
{
    /// <summary>float32 accumulation over K terms of size ~1: within 2e-6·√K·(|a|·|w| row norms) of the exact sum.</summary>
    private static void AssertClose(Tensor actual, Tensor expected, long k, string what)
    {
        var error = (actual.to(ScalarType.Float64) - expected).abs().max().item<double>();
        var tolerance = 2e-6 * Math.Sqrt(k) * Math.Max(1.0, expected.abs().max().item<double>());
        Assert.True(error <= tolerance, $"{what}: max |error| {error:G3} > {tolerance:G3}");
    }

    /// <summary>Every edge of the kernel: M not a multiple of its 6 rows or 48-row blocks, up to 192 rows (units pack
    /// their own panels) and more (W packed once; few row blocks split into panel slices, and many), N not a multiple of any panel width (8, 16, 32), K not a multiple of the 8-wide
    /// transposes or of the 256-deep slices, and MiniLM's shapes; with and without bias and GELU.</summary>
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 3, 5)]
    [InlineData(37, 29, 13)]
    [InlineData(4, 384, 96)]
    [InlineData(130, 64, 257)]
    [InlineData(25, 33, 41)]
    [InlineData(128, 384, 1152)]
    [InlineData(50, 1536, 384)]
    [InlineData(97, 600, 70)]
    [InlineData(300, 203, 77)]
    [InlineData(1030, 96, 40)]
    [InlineData(400, 520, 67)]
    public void EveryWidthEqualsTheFloat64Product(long m, long k, long n)
    {
        using var scope = NewDisposeScope();
        var seeded = new Seeded(21);
        var a = seeded.Normal(m, k);
        var w = seeded.Normal(n, k).mul_(0.1);
        var b = seeded.Normal(n);
        var exact = a.to(ScalarType.Float64).matmul(w.to(ScalarType.Float64).t());
        foreach (var bits in VectorWidths.Vectors)
        {
            foreach (var (bias, gelu) in new[] { (false, false), (true, false), (true, true), (false, true) })
            {
                var expected = bias ? exact + b.to(ScalarType.Float64) : exact.clone();
                if (gelu)
                {
                    expected = nn.functional.gelu(expected);
                }

                var c = full(m, n, float.NaN);
                unsafe
                {
                    PackedFloatGemm.Run(bits, (float*)TensorPointers.First(a), k, (float*)TensorPointers.First(w), k,
                        bias ? (float*)TensorPointers.First(b) : null, (float*)TensorPointers.First(c), (int)m, (int)n, (int)k, gelu);
                }

                AssertClose(c, expected, k, $"{bits}-bit, bias {bias}, gelu {gelu}");
            }
        }
    }

    /// <summary>The backend rule: the packed kernel only at 512 bits on a CPU that is not Intel's (MKL keeps its AVX-512
    /// kernels for those), libtorch's linear everywhere else and always without vectors.</summary>
    [Fact]
    public void PackedOnlyWhereMklLeavesAvx512Unused()
    {
        Assert.Equal(FloatGemmBackend.Torch, FloatGemm.Choose(0));
        if (Environment.GetEnvironmentVariable("GRAPHCOMPILER_FP32_GEMM") is { Length: > 0 } forced)
        {
            Assert.Equal(forced, FloatGemm.Choose(256).ToString(), ignoreCase: true);
            return;
        }

        Assert.Equal(FloatGemmBackend.Torch, FloatGemm.Choose(128));
        Assert.Equal(FloatGemmBackend.Torch, FloatGemm.Choose(256));
        Assert.Equal(FloatGemm.IsIntel ? FloatGemmBackend.Torch : FloatGemmBackend.Packed, FloatGemm.Choose(512));
        var vendor = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("vendor_id", StringComparison.Ordinal));
        Assert.Equal(vendor?.EndsWith("GenuineIntel", StringComparison.Ordinal) ?? false, FloatGemm.IsIntel);
    }

    /// <summary>Where the packed kernel runs, Kernels.Linear and LinearGelu equal libtorch's on a [B, S, K] input; where
    /// gradients are needed (or the tensors are not CPU float32 contiguous) libtorch's linear runs and autograd works.</summary>
    [Fact]
    public void LinearTakesThePackedKernelOnlyWithoutGradients()
    {
        using var scope = NewDisposeScope();
        var seeded = new Seeded(22);
        var x = seeded.Normal(3, 10, 64);
        var w = seeded.Normal(48, 64).mul_(0.1);
        var b = seeded.Normal(48);
        var reference = nn.functional.linear(x.to(ScalarType.Float64), w.to(ScalarType.Float64), b.to(ScalarType.Float64));
        using (no_grad())
        {
            AssertClose(Kernels.Linear(x, w, b), reference, 64, "Linear");
            AssertClose(Kernels.LinearGelu(x, w, b), nn.functional.gelu(reference), 64, "LinearGelu");
            Assert.Null(FloatGemm.TryLinear(x.to(ScalarType.Float64), w.to(ScalarType.Float64), null, gelu: false));
            Assert.Null(FloatGemm.TryLinear(x.transpose(0, 1), w, b, gelu: false));
        }

        var trained = w.clone().requires_grad_(true);
        Assert.Null(FloatGemm.TryLinear(x, trained, b, gelu: false));
        Kernels.Linear(x, trained, b).sum().backward();
        Assert.NotNull(trained.grad);
    }
}
