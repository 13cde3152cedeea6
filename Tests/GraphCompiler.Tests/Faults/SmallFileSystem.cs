using System.Diagnostics;
using Xunit.Sdk;

namespace GraphCompiler.Tests.Faults;

/// <summary>A size-limited tmpfs mounted on a fresh temporary folder for the full-disk tests; unmounted and removed on
/// dispose. Mounting needs root (CI runs as root): without it the test fails saying so, never skips.</summary>
internal sealed class SmallFileSystem : IDisposable
{
    public SmallFileSystem(long bytes)
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            throw new XunitException($"the full-disk tests mount a size-limited tmpfs and need root on Linux (CI runs as root); this is {Environment.OSVersion}, user '{Environment.UserName}'");
        }

        Root = Path.Combine(Path.GetTempPath(), "gc-fulldisk-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Root);
        var (code, output) = Run("mount", "-t", "tmpfs", "-o", $"size={bytes}", "tmpfs", Root);
        if (code != 0)
        {
            Directory.Delete(Root);
            throw new XunitException($"mount -t tmpfs -o size={bytes} tmpfs {Root} failed ({code}): {output}");
        }
    }

    public string Root { get; }

    /// <summary>Fills the file system with a filler file, then frees <paramref name="leave"/> bytes of it.</summary>
    public void Fill(long leave)
    {
        var filler = Path.Combine(Root, "filler");
        using var stream = new FileStream(filler, FileMode.Create, FileAccess.Write, FileShare.None, 1);
        var chunk = new byte[64 * 1024];
        try
        {
            while (true)
            {
                stream.Write(chunk);
            }
        }
        catch (IOException)
        {
            // full
        }

        stream.SetLength(Math.Max(0, stream.Length - leave));
    }

    public void Dispose()
    {
        var (code, output) = Run("umount", Root);
        if (code != 0)
        {
            Run("umount", "-l", Root);
        }

        Directory.Delete(Root, recursive: true);
        if (code != 0)
        {
            throw new XunitException($"umount {Root} failed ({code}): {output}");
        }
    }

    private static (int Code, string Output) Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output.Trim());
    }
}
