using GraphCompiler.Samples.Predict.Launcher;
using Xunit;

namespace GraphCompiler.Tests.Samples;

/// <summary>The launcher's choice of build: x86-64 levels from /proc/cpuinfo flags (the psABI table in the kernel's
/// names) and the refusals, each a one-line message that names what is missing.</summary>
public class PredictLauncherTests
{
    /// <summary>This project's AMD EPYC Zen 3 host, as its /proc/cpuinfo lists it (a VM: AVX2, FMA, no AVX-512).</summary>
    private const string Zen3 = "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext cpuid_fault vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero xsaveerptr arat umip vaes vpclmulqdq rdpid fsrm";

    /// <summary>An AMD EPYC Zen 4 guest: AVX-512 with VNNI and BF16.</summary>
    private const string Zen4 = "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext perfctr_core ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx512_bf16 clzero xsaveerptr wbnoinvd arat avx512vbmi umip pku ospke avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm arch_capabilities";

    /// <summary>An Intel Xeon Sapphire Rapids guest: AVX-512 with VNNI, FP16 and AMX.</summary>
    private const string SapphireRapids = "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pdcm pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch cpuid_fault ssbd ibrs ibpb stibp ibrs_enhanced fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid rtm avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 wbnoinvd arat avx512vbmi umip pku ospke waitpkg avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg tme avx512_vpopcntdq rdpid cldemote movdiri movdir64b fsrm md_clear serialize tsxldtrk amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities";

    /// <summary>QEMU's default "qemu64" model: x86-64 without SSSE3/SSE4 (below x86-64-v2).</summary>
    private const string Qemu64 = "flags\t\t: fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 syscall nx lm rep_good nopl cpuid pni cx16 hypervisor lahf_lm svm";

    /// <summary>An AMD EPYC Zen 5 Firecracker guest (kernel 6.18): AVX-512 and VNNI listed, but no "abm" although CPUID
    /// reports LZCNT (and no "sse4a", "xsaves").</summary>
    private const string Zen5Firecracker = "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext lm constant_tsc rep_good nopl xtopology tsc_reliable nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cr8_legacy misalignsse 3dnowprefetch topoext pti vmmcall bmi1 avx2 bmi2 erms avx512f avx512dq adx avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 avx_vnni avx512_bf16 clzero xsaveerptr arat avx512vbmi avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq movdiri movdir64b fsrm avx512_vp2intersect";

    /// <summary>That guest's CPUID leaves 0, 1, 7, 0x80000000 and 0x80000001, as read on it.</summary>
    private static (int, int, int, int) Zen5CpuId(int leaf, int subleaf) => unchecked((uint)leaf switch
    {
        0 => (0x0D, 0x68747541, 0x444D4163, 0x69746E65),
        1 => (0x00B00F21, (int)0xDFFE0800, (int)0xFED83203, 0x178BFBFF),
        7 => (0x01, (int)0xF1BB03A9, 0x18005F42, 0x110),
        0x80000000 => ((int)0x80000021, 0x68747541, 0x444D4163, 0x69746E65),
        0x80000001 => (0x00B00F21, 0x40000000, 0x440001F1, 0x25D3FBFF),
        _ => (0, 0, 0, 0),
    });

    /// <summary>A CPUID with nothing beyond leaf 0 (what a reader must survive).</summary>
    private static (int, int, int, int) EmptyCpuId(int leaf, int subleaf) => (0, 0, 0, 0);

    private static readonly int[] AllBuilt = [2, 3, 4];

    private static IReadOnlySet<string> Flags(string cpuinfoLine) => CpuLevels.FlagsFromCpuInfo(cpuinfoLine);

    private static IReadOnlySet<string> Without(string cpuinfoLine, params string[] removed) =>
        Flags(cpuinfoLine).Except(removed).ToHashSet();

    [Theory]
    [InlineData(Zen3, 3)]
    [InlineData(Zen4, 4)]
    [InlineData(SapphireRapids, 4)]
    [InlineData(Qemu64, CpuLevels.Baseline)]
    public void TheLevelOfEachCpuFollowsThePsAbiTable(string flags, int level) => Assert.Equal(level, CpuLevels.Detect(Flags(flags)));

    [Fact]
    public void AKernelThatHidesLzcntStillGivesTheLevelCpuidAndDotnetSee()
    {
        Assert.Equal(2, CpuLevels.Detect(Flags(Zen5Firecracker)));
        Assert.Equal(["abm"], CpuLevels.Missing(3, Flags(Zen5Firecracker)));

        var host = CpuLevels.HostFlags(Zen5Firecracker, Zen5CpuId);

        Assert.Contains("abm", host);
        Assert.Equal(4, CpuLevels.Detect(host));
    }

    [Fact]
    public void CpuidNeverAddsTheAvxFamilyWhichNeedsTheOsToSaveItsRegisters()
    {
        var cpuid = CpuLevels.ScalarFlagsFromCpuId(Zen5CpuId);

        Assert.Equal(["abm", "bmi1", "bmi2", "cx16", "lahf_lm", "movbe", "pni", "popcnt", "sse4_1", "sse4_2", "ssse3", "xsave"], cpuid.Order(StringComparer.Ordinal));
        // An OS that does not save the AVX-512 (or any AVX) state: the kernel lists none of it, CPUID cannot bring it back.
        var noAvx512 = string.Join(' ', Flags(Zen5Firecracker).Where(f => !f.StartsWith("avx512", StringComparison.Ordinal)));
        Assert.Equal(3, CpuLevels.Detect(CpuLevels.HostFlags("flags : " + noAvx512, Zen5CpuId)));
        var noAvx = string.Join(' ', Flags(Zen5Firecracker).Where(f => !f.StartsWith("avx", StringComparison.Ordinal)));
        Assert.Equal(2, CpuLevels.Detect(CpuLevels.HostFlags("flags : " + noAvx, Zen5CpuId)));
        Assert.Empty(CpuLevels.ScalarFlagsFromCpuId(EmptyCpuId));
    }

    [Fact]
    public void TheLevelsAreNamedAsIlcAndThePsAbiNameThem()
    {
        Assert.Equal(["x86-64-v2", "x86-64-v3", "x86-64-v4"], CpuLevels.Levels.Select(CpuLevels.Name));
        Assert.Equal(3, CpuLevels.Parse("x86-64-v3"));
        Assert.Equal(4, CpuLevels.Parse(" X86-64-V4 "));
        Assert.Null(CpuLevels.Parse("v3"));
        Assert.Null(CpuLevels.Parse("x86-64"));
        Assert.Equal("predict-x86-64-v3", LaunchPlan.BuildName(3));
    }

    [Theory]
    [InlineData("avx512bw")] // Knights Landing: F and CD, no BW/DQ/VL
    [InlineData("avx512vl")]
    [InlineData("avx512f")] // an OS that does not save the AVX-512 state: the kernel lists none of it
    public void OneMissingAvx512FlagIsV3(string missing)
    {
        var flags = Without(SapphireRapids, missing);

        Assert.Equal(3, CpuLevels.Detect(flags));
        Assert.Equal([missing], CpuLevels.Missing(4, flags));
    }

    [Theory]
    [InlineData("avx2")]
    [InlineData("fma")]
    [InlineData("abm")] // LZCNT
    [InlineData("movbe")]
    [InlineData("xsave")]
    public void OneMissingV3FlagIsV2EvenWithAvx512(string missing) => Assert.Equal(2, CpuLevels.Detect(Without(Zen4, missing)));

    [Theory]
    [InlineData("pni")] // SSE3
    [InlineData("sse4_2")]
    [InlineData("popcnt")]
    [InlineData("cx16")]
    public void OneMissingV2FlagIsBelowEveryLevel(string missing) => Assert.Equal(CpuLevels.Baseline, CpuLevels.Detect(Without(Zen3, missing)));

    [Fact]
    public void MissingListsEveryAbsentFlagOfTheLevelAndTheOnesBelow()
    {
        Assert.Empty(CpuLevels.Missing(3, Flags(Zen3)));
        Assert.Equal(["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"], CpuLevels.Missing(4, Flags(Zen3)));
        Assert.Equal(["popcnt", "sse4_1", "sse4_2", "ssse3", "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"], CpuLevels.Missing(3, Flags(Qemu64)));
    }

    [Fact]
    public void CpuInfoWithSeveralProcessorsYieldsTheFlagsAllOfThemHave()
    {
        var cpuinfo = $"processor\t: 0\nvendor_id\t: GenuineIntel\n{SapphireRapids}\nbugs\t\t: spectre_v1\n\nprocessor\t: 1\n{SapphireRapids.Replace(" avx512vl", "")}\n\n";

        var flags = CpuLevels.FlagsFromCpuInfo(cpuinfo);

        Assert.DoesNotContain("avx512vl", flags);
        Assert.Contains("avx512f", flags);
        Assert.DoesNotContain("spectre_v1", flags); // the "bugs" line is not a flags line
        Assert.Equal(3, CpuLevels.Detect(flags));
    }

    [Fact]
    public void CpuInfoWithoutAFlagsLineIsAFormatError()
    {
        var e = Assert.Throws<FormatException>(() => CpuLevels.FlagsFromCpuInfo("processor\t: 0\nFeatures\t: fp asimd evtstrm\n"));
        Assert.Contains("flags", e.Message);
    }

    [Theory]
    [InlineData(Zen3, 3)]
    [InlineData(Zen4, 4)]
    [InlineData(SapphireRapids, 4)]
    public void WithEveryBuildTheCpusOwnLevelRuns(string flags, int level) => Assert.Equal(LaunchChoice.Run(level), LaunchPlan.Choose(Flags(flags), null, AllBuilt));

    [Fact]
    public void AMissingBuildFallsBackToTheHighestOneBelowIt()
    {
        Assert.Equal(LaunchChoice.Run(3), LaunchPlan.Choose(Flags(Zen4), null, [2, 3]));
        Assert.Equal(LaunchChoice.Run(2), LaunchPlan.Choose(Flags(Zen3), null, [2, 4]));
        Assert.Equal(LaunchChoice.Run(4), LaunchPlan.Choose(Flags(Zen4), "", [2, 4])); // an empty variable forces nothing
    }

    [Fact]
    public void AForcedLowerLevelRuns()
    {
        Assert.Equal(LaunchChoice.Run(3), LaunchPlan.Choose(Flags(SapphireRapids), "x86-64-v3", AllBuilt));
        Assert.Equal(LaunchChoice.Run(2), LaunchPlan.Choose(Flags(Zen3), "x86-64-v2", AllBuilt));
        Assert.Equal(LaunchChoice.Run(3), LaunchPlan.Choose(Flags(Zen3), "x86-64-v3", AllBuilt));
    }

    [Fact]
    public void ForcingALevelTheCpuLacksNamesTheMissingFlags()
    {
        var choice = LaunchPlan.Choose(Flags(Zen3), "x86-64-v4", AllBuilt);

        Assert.True(choice.Refused);
        Assert.Equal("GRAPHCOMPILER_CPU_LEVEL=x86-64-v4: this CPU lacks avx512f avx512bw avx512cd avx512dq avx512vl (it runs x86-64-v3)", choice.Error);
    }

    [Fact]
    public void ForcingAnUnknownLevelListsTheLevels()
    {
        var choice = LaunchPlan.Choose(Flags(Zen4), "avx512", AllBuilt);

        Assert.Equal("GRAPHCOMPILER_CPU_LEVEL=avx512 is not a level: use one of x86-64-v2, x86-64-v3, x86-64-v4", choice.Error);
    }

    [Fact]
    public void ForcingALevelThatWasNotBuiltNamesTheFile()
    {
        var choice = LaunchPlan.Choose(Flags(Zen4), "x86-64-v2", [3, 4]);

        Assert.Equal("GRAPHCOMPILER_CPU_LEVEL=x86-64-v2: there is no predict-x86-64-v2 here (built: x86-64-v3, x86-64-v4)", choice.Error);
    }

    [Fact]
    public void ACpuBelowTheLowestBuildIsRefusedWithWhatItLacks()
    {
        var belowV2 = LaunchPlan.Choose(Flags(Qemu64), null, AllBuilt);
        Assert.Equal("this CPU runs x86-64, but the lowest build of predict here needs x86-64-v2: the CPU lacks popcnt sse4_1 sse4_2 ssse3", belowV2.Error);

        var v2Only = LaunchPlan.Choose(Without(Zen3, "avx2", "fma"), null, [3, 4]);
        Assert.Equal("this CPU runs x86-64-v2, but the lowest build of predict here needs x86-64-v3: the CPU lacks avx2 fma", v2Only.Error);
        Assert.DoesNotContain('\n', v2Only.Error!);
    }

    [Fact]
    public void NoBuildAtAllSaysHowToPublish()
    {
        var choice = LaunchPlan.Choose(Flags(Zen3), null, []);

        Assert.True(choice.Refused);
        Assert.Contains("scripts/publish-predict.sh", choice.Error);
    }
}
