using System.Diagnostics;
using System.Text.RegularExpressions;
using GraphCompiler.Runtime.IO;

namespace GraphCompiler.Runtime.Weights;

/// <summary>Writes a file through a temporary sibling (<c>name.tmp-PID-XXXXXXXX</c>), fsync and a rename: readers see
/// the old file or the new one, never half. On failure the temporary file is removed; a full disk is a
/// <see cref="DiskFullException"/> naming the final path. A process killed mid-write leaves only the temporary name,
/// which <see cref="RemoveStale"/> clears once that process is gone.</summary>
public static partial class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var temp = TempName(full);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(FaultPoints.WatchWrite(file, full));
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, full, overwrite: true);
            DirectorySync.Flush(Path.GetDirectoryName(full)!);
        }
        catch (Exception e)
        {
            TryDelete(temp);
            if (e is IOException io && DiskFullException.IsDiskFull(io) && e is not DiskFullException)
            {
                throw new DiskFullException(full, "nothing was written under this name; the previous file, if any, is unchanged", io);
            }

            throw;
        }
    }

    /// <summary>A temporary name beside <paramref name="path"/> carrying this process's id.</summary>
    public static string TempName(string path) => $"{path}.tmp-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Whether <paramref name="name"/> is a temporary name (<see cref="TempName"/>) of a process that is no
    /// longer running, i.e. the leftover of a killed writer.</summary>
    public static bool IsStale(string name)
    {
        var m = TempPattern().Match(name);
        if (!m.Success || !int.TryParse(m.Groups[1].ValueSpan, out var pid))
        {
            return false;
        }

        if (pid == Environment.ProcessId)
        {
            return false;
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            return process.HasExited;
        }
        catch (ArgumentException)
        {
            return true; // no such process
        }
    }

    /// <summary>Deletes the stale temporary files and folders (<see cref="IsStale"/>) in <paramref name="directory"/> and
    /// below; returns what it removed.</summary>
    public static IReadOnlyList<string> RemoveStale(string directory)
    {
        var removed = new List<string>();
        if (!Directory.Exists(directory))
        {
            return removed;
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(directory, "*.tmp-*", SearchOption.AllDirectories).ToList())
        {
            if (!IsStale(Path.GetFileName(entry)))
            {
                continue;
            }

            if (Directory.Exists(entry))
            {
                Directory.Delete(entry, recursive: true);
            }
            else if (File.Exists(entry))
            {
                File.Delete(entry);
            }
            else
            {
                continue; // inside a folder removed a moment ago
            }

            removed.Add(entry);
        }

        return removed;
    }

    private static void TryDelete(string temp)
    {
        try
        {
            File.Delete(temp);
        }
        catch (IOException)
        {
            // The original error matters more; a leftover temp name is cleared by RemoveStale later.
        }
    }

    [GeneratedRegex(@"\.tmp-(\d+)-[0-9a-f]{8}")]
    private static partial Regex TempPattern();
}
