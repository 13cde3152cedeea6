using System.Runtime.InteropServices;
using System.Text;

namespace GraphCompiler.Samples.Predict.Launcher;

/// <summary>Reads the CPU's flags, picks the build of predict beside this file (<see cref="LaunchPlan"/>) and replaces
/// this process with it (execv, same argv and environment), so exit code, standard streams and signals are the build's
/// own. Every refusal is one line on stderr and exit code 1.</summary>
internal static unsafe partial class Program
{
    /// <summary>"1": say on stderr which build runs and why.</summary>
    private const string VerboseVariable = "GRAPHCOMPILER_VERBOSE";

    private const int EINTR = 4;

    private static int Main()
    {
        // /proc/self/exe: the launcher's own file with symlinks resolved, so a link on PATH still finds the builds.
        var self = Environment.ProcessPath;
        if (string.IsNullOrEmpty(self))
        {
            return Fail("cannot find its own file (/proc/self/exe)");
        }

        var dir = Path.GetDirectoryName(self)!;
        IReadOnlySet<string> flags;
        try
        {
            flags = CpuLevels.HostFlags(File.ReadAllText("/proc/cpuinfo"), CpuLevels.HardwareCpuId);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return Fail($"cannot read the CPU's flags from /proc/cpuinfo: {e.Message}");
        }

        byte[] cmdline;
        try
        {
            // The exact bytes of argv (NUL-separated): passed on unchanged, even where they are not UTF-8.
            cmdline = File.ReadAllBytes("/proc/self/cmdline");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail($"cannot read its arguments from /proc/self/cmdline: {e.Message}");
        }

        var built = CpuLevels.Levels.Where(l => File.Exists(Path.Combine(dir, LaunchPlan.BuildName(l)))).ToArray();
        var forced = Environment.GetEnvironmentVariable(LaunchPlan.ForceVariable);
        var choice = LaunchPlan.Choose(flags, forced, built);
        if (choice.Refused)
        {
            return Fail(choice.Error!);
        }

        var build = Path.Combine(dir, LaunchPlan.BuildName(choice.Level));
        if (Environment.GetEnvironmentVariable(VerboseVariable) == "1")
        {
            var why = string.IsNullOrWhiteSpace(forced) ? "the highest level built for" : $"forced by {LaunchPlan.ForceVariable}";
            WriteLine($"predict: CPU runs {CpuLevels.Name(CpuLevels.Detect(flags))}; running {build} ({why})");
        }

        var errno = Exec(build, cmdline);
        return Fail($"cannot run {build}: {Marshal.GetPInvokeErrorMessage(errno)}");
    }

    /// <summary>execv(path, argv) with argv split from /proc/self/cmdline; returns errno when it fails (on success it does
    /// not return).</summary>
    private static int Exec(string path, byte[] cmdline)
    {
        var pathBytes = Encoding.UTF8.GetBytes(path + "\0");
        if (cmdline.Length == 0)
        {
            // Started with an empty argv: give the build its path as argv[0].
            cmdline = pathBytes;
        }
        else if (cmdline[^1] != 0)
        {
            cmdline = [.. cmdline, 0];
        }

        var starts = new List<int> { 0 };
        for (var i = 0; i < cmdline.Length - 1; i++)
        {
            if (cmdline[i] == 0)
            {
                starts.Add(i + 1);
            }
        }

        var argv = new nint[starts.Count + 1];
        fixed (byte* args = cmdline)
        fixed (byte* file = pathBytes)
        fixed (nint* pointers = argv)
        {
            for (var i = 0; i < starts.Count; i++)
            {
                pointers[i] = (nint)(args + starts[i]);
            }

            Execv(file, (byte**)pointers);
            return Marshal.GetLastPInvokeError();
        }
    }

    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true)]
    private static partial int Execv(byte* path, byte** argv);

    private static int Fail(string message)
    {
        WriteLine("predict: " + message);
        return 1;
    }

    /// <summary>write(2) to fd 2. Not System.Console, which would also set up terminal and signal handling that a process
    /// about to exec has no use for; not a FileStream, which writes at its own offset into a redirected file.</summary>
    private static void WriteLine(string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        fixed (byte* start = bytes)
        {
            for (var done = 0; done < bytes.Length;)
            {
                var n = Write(2, start + done, bytes.Length - done);
                if (n < 0 && Marshal.GetLastPInvokeError() == EINTR)
                {
                    continue;
                }

                if (n <= 0)
                {
                    return; // stderr closed or full: nothing more to tell.
                }

                done += (int)n;
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(int fd, byte* buffer, nint count);
}
