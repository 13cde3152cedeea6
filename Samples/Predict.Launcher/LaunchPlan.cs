namespace GraphCompiler.Samples.Predict.Launcher;

/// <summary>What the launcher does: run the build for <see cref="Level"/>, or refuse with a one-line
/// <see cref="Error"/>.</summary>
public sealed record LaunchChoice(int Level, string? Error)
{
    public bool Refused => Error is not null;

    public static LaunchChoice Run(int level) => new(level, null);

    public static LaunchChoice Refuse(string error) => new(0, error);
}

/// <summary>Picks the build to run from the CPU's flags, the level asked for in <see cref="ForceVariable"/> and the
/// builds present. A pure function, so every case is a unit test.</summary>
public static class LaunchPlan
{
    /// <summary>Forces a level at or below the CPU's (to run a lower build's code paths, or for tests).</summary>
    public const string ForceVariable = "GRAPHCOMPILER_CPU_LEVEL";

    /// <summary>The file name of the build for a level: predict-x86-64-v3.</summary>
    public static string BuildName(int level) => "predict-" + CpuLevels.Name(level);

    /// <summary>The highest built level the CPU supports, or the forced one; otherwise a message that names what is
    /// missing (the CPU's flags, or the build's file).</summary>
    public static LaunchChoice Choose(IReadOnlySet<string> cpuFlags, string? forced, IReadOnlyCollection<int> built)
    {
        var cpu = CpuLevels.Detect(cpuFlags);
        if (built.Count == 0)
        {
            return LaunchChoice.Refuse($"no build of predict here ({string.Join(", ", CpuLevels.Levels.Select(BuildName))}); publish with scripts/publish-predict.sh");
        }

        if (!string.IsNullOrWhiteSpace(forced))
        {
            if (CpuLevels.Parse(forced) is not { } level)
            {
                return LaunchChoice.Refuse($"{ForceVariable}={forced} is not a level: use one of {string.Join(", ", CpuLevels.Levels.Select(CpuLevels.Name))}");
            }

            if (level > cpu)
            {
                return LaunchChoice.Refuse($"{ForceVariable}={CpuLevels.Name(level)}: this CPU lacks {string.Join(' ', CpuLevels.Missing(level, cpuFlags))} (it runs {CpuLevels.Name(cpu)})");
            }

            return built.Contains(level)
                ? LaunchChoice.Run(level)
                : LaunchChoice.Refuse($"{ForceVariable}={CpuLevels.Name(level)}: there is no {BuildName(level)} here (built: {string.Join(", ", built.Order().Select(CpuLevels.Name))})");
        }

        var best = built.Where(l => l <= cpu).DefaultIfEmpty(0).Max();
        if (best == 0)
        {
            var lowest = built.Min();
            return LaunchChoice.Refuse($"this CPU runs {CpuLevels.Name(cpu)}, but the lowest build of predict here needs {CpuLevels.Name(lowest)}: the CPU lacks {string.Join(' ', CpuLevels.Missing(lowest, cpuFlags))}");
        }

        return LaunchChoice.Run(best);
    }
}
