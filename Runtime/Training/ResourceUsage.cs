using System.Diagnostics;
using System.Globalization;

namespace GraphCompiler.Runtime.Training;

/// <summary>Memory figures for reports. libtorch's CPU allocator keeps no statistics that TorchSharp exposes (its
/// <c>torch.cuda</c> memory functions are CUDA-only), so the peak is the process's: Linux's <c>VmHWM</c> (peak resident
/// set) from <c>/proc/self/status</c>, else <see cref="Process.PeakWorkingSet64"/>.</summary>
public static class ResourceUsage
{
    public static long PeakWorkingSetBytes()
    {
        try
        {
            if (File.Exists("/proc/self/status"))
            {
                foreach (var line in File.ReadLines("/proc/self/status"))
                {
                    if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    {
                        var kb = long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                        return kb * 1024;
                    }
                }
            }
        }
        catch (IOException)
        {
        }

        using var self = Process.GetCurrentProcess();
        return self.PeakWorkingSet64;
    }
}
