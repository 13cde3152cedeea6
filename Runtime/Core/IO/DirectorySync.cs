using System.Runtime.InteropServices;

namespace GraphCompiler.Runtime.IO;

/// <summary>fsync of a folder after a rename into it: a file's own fsync makes its bytes durable, not its new name, so
/// without this a power loss could undo the rename. Linux only; elsewhere, and on any failure, it does nothing (the
/// rename has happened either way; this only hardens it).</summary>
public static class DirectorySync
{
    private const int ORdonlyCloexec = 0x80000; // O_RDONLY | O_CLOEXEC (same value on x86-64 and arm64)

    public static void Flush(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            var fd = open(directory, ORdonlyCloexec);
            if (fd < 0)
            {
                return;
            }

            fsync(fd);
            close(fd);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // not glibc/musl: nothing to do
        }
    }

    [DllImport("libc", EntryPoint = "open")]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync")]
    private static extern int fsync(int fd);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int close(int fd);
}
