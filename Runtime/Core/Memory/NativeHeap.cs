using System.Runtime.InteropServices;

namespace GraphCompiler.Runtime;

/// <summary>glibc malloc settings for training and batched inference on the CPU (the trainer, predict). libtorch
/// allocates every activation and gradient with malloc; by default glibc serves blocks of a few MB and up with fresh mmap pages and returns freed heap tops to the
/// kernel, so each step faults in and zero-fills the same hundreds of MB again (measured at 32×128 on MiniLM: 4–9 % of
/// all cycles in the kernel's page-fault and clear-page code, and a backward pass 15 % slower). Keeping blocks up to
/// 32 MiB in the heap and not trimming it lets the next step reuse them. Other C libraries (or platforms) are left
/// alone.</summary>
public static class NativeHeap
{
    private const int MTrimThreshold = -1;
    private const int MMmapThreshold = -3;

    /// <summary>glibc's upper bound for the mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).</summary>
    private const int MaxMmapThreshold = 32 * 1024 * 1024;

    private static readonly Lazy<bool> Applied = new(Apply, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Applies the settings once per process; true when glibc took them.</summary>
    public static bool KeepFreedMemory() => Applied.Value;

    private static bool Apply()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            return mallopt(MMmapThreshold, MaxMmapThreshold) == 1 && mallopt(MTrimThreshold, int.MaxValue) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int mallopt(int param, int value);
}
