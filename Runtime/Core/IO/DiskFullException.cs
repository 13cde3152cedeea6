namespace GraphCompiler.Runtime.IO;

/// <summary>A write failed because the file system is full (ENOSPC, or a disk quota: EDQUOT; ERROR_DISK_FULL on
/// Windows). <see cref="Path"/> is the file or folder that was being written, under its final name.</summary>
public sealed class DiskFullException : IOException
{
    public DiskFullException(string path, string consequence, IOException inner)
        : base($"{path}: the disk is full ({Root(inner).Message.TrimEnd('.')}); {consequence}", inner)
    {
        Path = path;
        HResult = inner.HResult;
    }

    public string Path { get; }

    /// <summary>Whether <paramref name="e"/> (or an IOException inside it) reports a full disk or an exceeded quota.</summary>
    public static bool IsDiskFull(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is DiskFullException)
            {
                return true;
            }

            // .NET on Unix puts the raw errno in HResult for errors it has no exception type for.
            if (e is IOException && (e.HResult is Enospc or Edquot || (uint)e.HResult is WindowsDiskFull or WindowsHandleDiskFull))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The operating system's own error under any re-wrapping.</summary>
    private static Exception Root(Exception e)
    {
        while (e is DiskFullException && e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }

    private const int Enospc = 28;
    private const int Edquot = 122;
    private const uint WindowsDiskFull = 0x80070070;
    private const uint WindowsHandleDiskFull = 0x80070027;
}
