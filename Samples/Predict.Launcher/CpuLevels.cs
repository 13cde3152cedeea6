namespace GraphCompiler.Samples.Predict.Launcher;

/// <summary>The x86-64 micro-architecture levels of the psABI (x86-64-v2, -v3, -v4), read from the CPU flags the Linux
/// kernel lists in /proc/cpuinfo. The kernel leaves out what the OS does not enable (AVX when XSAVE is off, AVX-512 when
/// the kernel does not save its registers), so a level found here is one a program may use. Some kernels also leave out
/// flags that need no OS support (a Firecracker guest on Zen 5 lists no "abm" though CPUID has LZCNT, and .NET uses
/// it), so those are read from CPUID as well: <see cref="ScalarFlagsFromCpuId"/>.</summary>
public static class CpuLevels
{
    /// <summary>Below every level this project builds for: an x86-64 CPU without all of x86-64-v2.</summary>
    public const int Baseline = 1;

    public const int Highest = 4;

    /// <summary>What each level adds to the one below, in the kernel's names: SSE3 is "pni"; LZCNT is "abm" on AMD and
    /// Intel alike; OSXSAVE is not listed (the kernel drops "avx" itself when the OS does not enable it), so v3 asks for
    /// "xsave".</summary>
    private static readonly string[][] Added =
    [
        /* v2 */ ["cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"],
        /* v3 */ ["avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"],
        /* v4 */ ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"],
    ];

    /// <summary>The levels this project builds for, lowest first.</summary>
    public static IReadOnlyList<int> Levels { get; } = Enumerable.Range(Baseline + 1, Highest - Baseline).ToArray();

    /// <summary>"x86-64-v3" for 3; "x86-64" for the baseline.</summary>
    public static string Name(int level) => level == Baseline ? "x86-64" : $"x86-64-v{level}";

    /// <summary>The level a name spells (x86-64-v2, x86-64-v3, x86-64-v4), or null.</summary>
    public static int? Parse(string name)
    {
        foreach (var level in Levels)
        {
            if (string.Equals(name.Trim(), Name(level), StringComparison.OrdinalIgnoreCase))
            {
                return level;
            }
        }

        return null;
    }

    /// <summary>The flags a level needs that <paramref name="flags"/> lacks (its own and those of the levels below), in
    /// the order of the psABI table.</summary>
    public static IReadOnlyList<string> Missing(int level, IReadOnlySet<string> flags)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(level, Baseline);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(level, Highest);
        return Added.Take(level - Baseline).SelectMany(f => f).Where(f => !flags.Contains(f)).ToArray();
    }

    /// <summary>The highest level every one of whose flags is present; <see cref="Baseline"/> when x86-64-v2 is not.</summary>
    public static int Detect(IReadOnlySet<string> flags)
    {
        var level = Baseline;
        while (level < Highest && Missing(level + 1, flags).Count == 0)
        {
            level++;
        }

        return level;
    }

    /// <summary>Reads CPUID leaf <c>leaf</c>, sub-leaf <c>subleaf</c>: (EAX, EBX, ECX, EDX).</summary>
    public delegate (int Eax, int Ebx, int Ecx, int Edx) CpuIdReader(int leaf, int subleaf);

    /// <summary>The flags of the levels that need no OS state (no XCR0 bit: general-purpose and SSE-class instructions),
    /// in the kernel's names, as CPUID reports them: what the .NET runtime in each build reads too. The AVX family
    /// (avx, avx2, fma, f16c, avx512*) is never taken from here: only the kernel knows whether the OS saves its
    /// registers.</summary>
    public static IReadOnlySet<string> ScalarFlagsFromCpuId(CpuIdReader cpuid)
    {
        var flags = new HashSet<string>(StringComparer.Ordinal);
        void Bit(int register, int bit, string name)
        {
            if (((register >> bit) & 1) != 0)
            {
                flags.Add(name);
            }
        }

        var maxLeaf = cpuid(0, 0).Eax;
        if (maxLeaf >= 1)
        {
            var (_, _, ecx, _) = cpuid(1, 0);
            Bit(ecx, 0, "pni");
            Bit(ecx, 9, "ssse3");
            Bit(ecx, 13, "cx16");
            Bit(ecx, 19, "sse4_1");
            Bit(ecx, 20, "sse4_2");
            Bit(ecx, 22, "movbe");
            Bit(ecx, 23, "popcnt");
            Bit(ecx, 26, "xsave");
        }

        if (maxLeaf >= 7)
        {
            var (_, ebx, _, _) = cpuid(7, 0);
            Bit(ebx, 3, "bmi1");
            Bit(ebx, 8, "bmi2");
        }

        if ((uint)cpuid(unchecked((int)0x80000000), 0).Eax >= 0x80000001)
        {
            var (_, _, ecx, _) = cpuid(unchecked((int)0x80000001), 0);
            Bit(ecx, 0, "lahf_lm");
            Bit(ecx, 5, "abm");
        }

        return flags;
    }

    /// <summary>What the launcher goes by: /proc/cpuinfo's flags and the OS-independent ones CPUID reports.</summary>
    public static IReadOnlySet<string> HostFlags(string cpuinfo, CpuIdReader cpuid) =>
        FlagsFromCpuInfo(cpuinfo).Union(ScalarFlagsFromCpuId(cpuid)).ToHashSet(StringComparer.Ordinal);

    /// <summary>CPUID through .NET's baseline intrinsic (every x86-64 CPU has the instruction).</summary>
    public static (int Eax, int Ebx, int Ecx, int Edx) HardwareCpuId(int leaf, int subleaf) =>
        System.Runtime.Intrinsics.X86.X86Base.CpuId(leaf, subleaf);

    /// <summary>The flags of /proc/cpuinfo's text: those on every processor's "flags" line (a process may run on any of
    /// them). Throws <see cref="FormatException"/> when there is no flags line.</summary>
    public static IReadOnlySet<string> FlagsFromCpuInfo(string cpuinfo)
    {
        HashSet<string>? common = null;
        foreach (var line in cpuinfo.Split('\n'))
        {
            var colon = line.IndexOf(':');
            if (colon < 0 || line[..colon].Trim() != "flags")
            {
                continue;
            }

            var flags = line[(colon + 1)..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
            if (common is null)
            {
                common = flags;
            }
            else
            {
                common.IntersectWith(flags);
            }
        }

        return common ?? throw new FormatException("no \"flags\" line (is this an x86-64 /proc/cpuinfo?)");
    }
}
