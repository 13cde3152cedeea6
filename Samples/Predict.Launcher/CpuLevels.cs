namespace GraphCompiler.Samples.Predict.Launcher;

/// <summary>The x86-64 micro-architecture levels of the psABI (x86-64-v2, -v3, -v4), read from the CPU flags the Linux
/// kernel lists in /proc/cpuinfo. The kernel leaves out what the OS does not enable (AVX when XSAVE is off, AVX-512 when
/// the kernel does not save its registers), so a level found here is one a program may use.</summary>
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
