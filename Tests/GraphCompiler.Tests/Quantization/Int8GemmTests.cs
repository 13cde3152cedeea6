using GraphCompiler.Runtime;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Quantization;

/// <summary>The int8 GEMM on every backend this host runs — libtorch's <c>_int_mm</c>, each <see cref="PackedInt8Gemm"/>
/// kernel the CPU has (SSE2, AVX2, AVX-VNNI, AVX-512BW), float64 — against the exact integer product.</summary>
[Trait(VectorWidths.Category, VectorWidths.Kernels)]
public sealed class Int8GemmTests
{
    /// <summary>The packed kernels the CPU can run: at least SSE2 on any x86-64 with hardware intrinsics enabled.</summary>
    private static PackedInt8Gemm.Variant[] SupportedVariants()
    {
        var variants = Enum.GetValues<PackedInt8Gemm.Variant>().Where(PackedInt8Gemm.IsSupported).ToArray();
        Assert.Equal(System.Runtime.Intrinsics.X86.Sse2.IsSupported, variants.Contains(PackedInt8Gemm.Variant.Sse2));
        Assert.Equal(System.Runtime.Intrinsics.X86.Avx2.IsSupported, variants.Contains(PackedInt8Gemm.Variant.Avx2));
        return variants;
    }

    /// <summary>Every shape edge of the packed kernel: M not a multiple of its 6 rows or 24-row blocks, few row blocks
    /// (units split into panel slices) and many, N not a multiple of
    /// any panel width (8, 16, 32), odd K (the int16 pairs are padded) and K not a multiple of the 16-wide transposes,
    /// and MiniLM's shapes; a's rows and b's columns as strided views.</summary>
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 3, 5)]
    [InlineData(37, 29, 13)]
    [InlineData(4, 384, 96)]
    [InlineData(130, 64, 257)]
    [InlineData(25, 33, 41)]
    [InlineData(128, 384, 1152)]
    [InlineData(50, 1536, 384)]
    [InlineData(300, 203, 77)]
    [InlineData(1030, 96, 40)]
    public void EveryPackedKernelEqualsTheExactProduct(long m, long k, long n)
    {
        using var scope = NewDisposeScope();
        var seeded = new Seeded(14);
        var wideA = seeded.Int8(-128, 128, m, k + 3);
        var a = wideA.narrow(1, 2, k); // row stride k + 3
        var w = seeded.Int8(-128, 128, n, k);
        var expected = a.to(ScalarType.Float64).matmul(w.to(ScalarType.Float64).t());
        foreach (var variant in SupportedVariants())
        {
            foreach (var b in new[] { w.t(), w.t().contiguous() })
            {
                var result = full(m, n, 12345, ScalarType.Int32);
                Int8Gemm.PackedInto(variant, 256, a, b, result);
                Assert.True(Seeded.Same(result.to(ScalarType.Float64), expected), $"{variant}, b {(b.is_contiguous() ? "row-major" : "a transposed view")}");
            }
        }
    }

    /// <summary>The backend rule: oneDNN only with 512-bit vectors and AVX512-VNNI (libtorch's _int_mm is a scalar loop
    /// otherwise), the packed kernel at any other accelerated width, float64 without vectors.</summary>
    [Fact]
    public void BackendFollowsTheVectorWidthAndVnni()
    {
        if (Environment.GetEnvironmentVariable("GRAPHCOMPILER_INT8_GEMM") is { Length: > 0 } forced)
        {
            Assert.Equal(forced, Int8Gemm.Choose(256).ToString(), ignoreCase: true);
            return;
        }

        var packed = System.Runtime.Intrinsics.X86.Sse2.IsSupported ? Int8GemmBackend.Packed : Int8GemmBackend.Exact;
        Assert.Equal(Int8GemmBackend.Exact, Int8Gemm.Choose(0));
        Assert.Equal(packed, Int8Gemm.Choose(128));
        Assert.Equal(packed, Int8Gemm.Choose(256));
        Assert.Equal(Int8Gemm.OneDnnUsesVnni && Int8Gemm.IsNativeAvailable ? Int8GemmBackend.OneDnn : packed, Int8Gemm.Choose(512));
        Assert.Equal(System.Runtime.Intrinsics.X86.Sse2.IsSupported ? PackedInt8Gemm.Variant.Sse2 : null, PackedInt8Gemm.For(128));
        Assert.Null(PackedInt8Gemm.For(0));
        using (VectorWidth.Force(0))
        {
            Assert.Equal(Int8GemmBackend.Exact, Int8Gemm.Backend);
            using var a = new Seeded(15).Int8(-128, 128, 9, 10);
            using var b = new Seeded(16).Int8(-128, 128, 10, 11);
            Assert.True(Seeded.Same(Int8Gemm.MatMul(a, b).to(ScalarType.Float64), a.to(ScalarType.Float64).matmul(b.to(ScalarType.Float64))));
        }
    }

    /// <summary>libtorch's own kernel gives the exact product wherever the backend rule would use it (oneDNN with VNNI,
    /// not capped by ONEDNN_MAX_CPU_ISA); where it is capped, the rule never picks it.</summary>
    [Fact]
    public void LibtorchIntMmEqualsTheExactProduct()
    {
        if (!Int8Gemm.OneDnnUsesVnni)
        {
            Assert.NotEqual(Int8GemmBackend.OneDnn, Environment.GetEnvironmentVariable("GRAPHCOMPILER_INT8_GEMM") is { Length: > 0 } ? Int8GemmBackend.Packed : Int8Gemm.Choose(512));
            return;
        }

        using var scope = NewDisposeScope();
        var seeded = new Seeded(17);
        var a = seeded.Int8(-128, 128, 19, 70);
        var w = seeded.Int8(-128, 128, 23, 70);
        var result = zeros(19, 23, ScalarType.Int32);
        Int8Gemm.OneDnnInto(a, w.t(), result);
        Assert.True(Seeded.Same(result.to(ScalarType.Float64), a.to(ScalarType.Float64).matmul(w.to(ScalarType.Float64).t())));
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("", true)]
    [InlineData("ALL", true)]
    [InlineData("avx512_core_vnni", true)]
    [InlineData("AVX512_CORE_AMX", true)]
    [InlineData("AVX10_1_512", true)]
    [InlineData("AVX512_CORE", false)]
    [InlineData("AVX2", false)]
    [InlineData("AVX2_VNNI", false)]
    [InlineData("SSE41", false)]
    public void AnIsaCapBelowVnniKeepsOneDnnOff(string? cap, bool allowed) => Assert.Equal(allowed, Int8Gemm.IsaCapAllowsVnni(cap));

    [Fact]
    public void NativeEntryPointIsFound()
    {
        Assert.True(Int8Gemm.IsNativeAvailable, Int8Gemm.NativeDescription);
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(37, 29, 13)]
    [InlineData(4, 384, 96)]
    [InlineData(130, 64, 257)]
    public void EqualsTheExactIntegerProduct(long m, long k, long n)
    {
        using var scope = NewDisposeScope();
        var seeded = new Seeded(11);

        // The full int8 range, -128 included: the kernel must not assume the symmetric ±127 of quantized values.
        var a = seeded.Int8(-128, 128, m, k);
        var w = seeded.Int8(-128, 128, n, k);
        var expected = a.to(ScalarType.Float64).matmul(w.to(ScalarType.Float64).t());

        var transposed = Int8Gemm.MatMul(a, w.t());
        var rowMajor = Int8Gemm.MatMul(a, w.t().contiguous());
        Assert.Equal(ScalarType.Int32, transposed.dtype);
        Assert.Equal(new[] { m, n }, transposed.shape);
        Assert.True(Seeded.Same(transposed.to(ScalarType.Float64), expected), "transposed weight view");
        Assert.True(Seeded.Same(rowMajor.to(ScalarType.Float64), expected), "row-major mat2");
    }

    [Fact]
    public void TakesStridedOperandsAndWritesIntoAPreallocatedResult()
    {
        using var scope = NewDisposeScope();
        var seeded = new Seeded(12);
        var wide = seeded.Int8(-127, 128, 20, 50);
        var a = wide.narrow(1, 3, 40).narrow(0, 1, 17); // row stride 50, not contiguous
        var b = seeded.Int8(-127, 128, 40, 40).slice(0, 0, 40, 2).slice(1, 0, 40, 2); // strides (80, 2): copied first
        var b2 = seeded.Int8(-127, 128, 40, 60).narrow(1, 0, 20); // [40, 20] with row stride 60
        var result = full(17, 20, 99, ScalarType.Int32);

        Int8Gemm.MatMulInto(a, b2, result);
        Assert.True(Seeded.Same(result.to(ScalarType.Float64), a.to(ScalarType.Float64).matmul(b2.to(ScalarType.Float64))));

        var c = seeded.Int8(-127, 128, 20, 20);
        var result2 = Int8Gemm.MatMul(c, b);
        Assert.True(Seeded.Same(result2.to(ScalarType.Float64), c.to(ScalarType.Float64).matmul(b.to(ScalarType.Float64))));
    }

    [Fact]
    public void EmptyDimensionsGiveZeros()
    {
        using var scope = NewDisposeScope();
        var result = full(3, 4, 7, ScalarType.Int32);
        Int8Gemm.MatMulInto(zeros(3, 0, ScalarType.Int8), zeros(0, 4, ScalarType.Int8), result);
        Assert.Equal(0, result.abs().sum().item<long>());
        Assert.Equal(new long[] { 0, 4 }, Int8Gemm.MatMul(zeros(0, 5, ScalarType.Int8), zeros(5, 4, ScalarType.Int8)).shape);
    }

    [Fact]
    public void ExactFallbackAgreesWithTheNativeKernel()
    {
        using var scope = NewDisposeScope();
        var seeded = new Seeded(13);
        var a = seeded.Int8(-128, 128, 33, 70);
        var b = seeded.Int8(-128, 128, 70, 21);
        var exact = zeros(33, 21, ScalarType.Int32);
        Int8Gemm.ExactInto(a, b, exact);
        Assert.True(Seeded.Same(exact, Int8Gemm.MatMul(a, b)));
    }

    [Fact]
    public void BadOperandsAreArgumentErrorsNotNativeCrashes()
    {
        using var scope = NewDisposeScope();
        var a = zeros(4, 8, ScalarType.Int8);
        var b = zeros(8, 3, ScalarType.Int8);
        AssertError(() => Int8Gemm.MatMul(zeros(4, 8), b), "must be int8");
        AssertError(() => Int8Gemm.MatMul(a, zeros(8, 3, ScalarType.Byte)), "must be int8");
        AssertError(() => Int8Gemm.MatMul(zeros(2, 4, 8, ScalarType.Int8), b), "must be matrices");
        AssertError(() => Int8Gemm.MatMul(a, zeros(7, 3, ScalarType.Int8)), "K 8 ≠ 7");
        AssertError(() => Int8Gemm.MatMulInto(a, b, zeros(4, 3)), "result must be int32");
        AssertError(() => Int8Gemm.MatMulInto(a, b, zeros(4, 4, ScalarType.Int32)), "result must be [4, 3]");
        AssertError(() => Int8Gemm.MatMulInto(a, b, zeros(3, 4, ScalarType.Int32).t()), "must be contiguous");
        AssertError(() => Int8Gemm.MatMul(zeros(1, Int8Gemm.MaxK + 1, ScalarType.Int8), zeros(Int8Gemm.MaxK + 1, 1, ScalarType.Int8)), "overflow");
    }

    private static void AssertError(Action call, string expected)
    {
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
