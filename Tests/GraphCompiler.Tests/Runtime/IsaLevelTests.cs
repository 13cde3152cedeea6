using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GraphCompiler.Runtime;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace GraphCompiler.Tests.Runtime;

/// <summary>Which instruction-set level this test process runs the kernels at. scripts/test.sh runs the kernel tests
/// again under each lower level the host can run, forced with the runtime's knobs (DOTNET_EnableAVX512=0,
/// DOTNET_EnableAVX2=0, DOTNET_EnableHWIntrinsic=0) and GRAPHCOMPILER_EXPECT_VECTOR_BITS naming the width that level
/// must give: this test fails if a knob did not take effect, so a forced run can never silently test the natural level
/// again.</summary>
[Trait(VectorWidths.Category, VectorWidths.Kernels)]
public sealed class IsaLevelTests(ITestOutputHelper output)
{
    [Fact]
    public void KernelsRunAtTheLevelThisProcessWasStartedAt()
    {
        var accelerated = Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : Vector128.IsHardwareAccelerated ? 128 : 0;
        output.WriteLine($"vector width {VectorWidth.Bits} bits; AVX2 {Avx2.IsSupported}, AVX-512 {Avx512F.IsSupported}, AVX-VNNI {AvxVnni.IsSupported}, " +
                         $"AVX512-VNNI (CPUID) {Int8Gemm.HasAvx512Vnni}; int8 GEMM: {Int8Gemm.Describe()}");
        Assert.Equal(accelerated, VectorWidth.Bits);
        Assert.Equal(VectorWidth.Bits, VectorWidth.Current);
        Assert.Equal(Int8Gemm.Choose(VectorWidth.Bits), Int8Gemm.Backend);

        if (Environment.GetEnvironmentVariable("GRAPHCOMPILER_EXPECT_VECTOR_BITS") is { Length: > 0 } expected)
        {
            Assert.Equal(int.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), VectorWidth.Bits);
            if (VectorWidth.Bits < 256)
            {
                Assert.False(Avx2.IsSupported, "DOTNET_EnableAVX2=0 must turn AVX2 off");
            }

            if (VectorWidth.Bits < 512)
            {
                Assert.False(Avx512F.IsSupported, "DOTNET_EnableAVX512=0 must turn AVX-512 off");
            }
        }
        else if (CpuFlags().Contains("avx2") && CpuFlags().Contains("fma"))
        {
            // The natural run of an AVX2 machine must run at least the 256-bit paths.
            Assert.True(VectorWidth.Bits >= 256, $"an AVX2 CPU runs the kernels at {VectorWidth.Bits} bits");
        }
    }

    /// <summary>The CPU's feature flags as the kernel reports them (empty off Linux).</summary>
    private static HashSet<string> CpuFlags()
    {
        const string cpuinfo = "/proc/cpuinfo";
        var line = File.Exists(cpuinfo) ? File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) : null;
        return line is null ? [] : [.. line[(line.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries)];
    }
}
