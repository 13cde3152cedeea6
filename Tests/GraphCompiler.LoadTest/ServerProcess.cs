using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace GraphCompiler.LoadTest;

/// <summary>A <c>predict serve</c> process on loopback: started on a free port, ready when it says where it listens,
/// stopped with SIGTERM (and its exit code kept).</summary>
public sealed partial class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServerProcess(Process process)
    {
        _process = process;
    }

    public Uri BaseAddress { get; private set; } = null!;

    public int Pid => _process.Id;

    /// <summary>Everything the server wrote to stderr so far.</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Starts <paramref name="executable"/> <c>serve --host 127.0.0.1 --port 0</c> with <paramref name="args"/>
    /// and waits until it listens.</summary>
    public static async Task<ServerProcess> StartAsync(string executable, IEnumerable<string> args, TimeSpan timeout, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(executable) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in new[] { "serve", "--host", "127.0.0.1", "--port", "0" }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {executable}");
        var server = new ServerProcess(process);
        process.ErrorDataReceived += (_, e) => server.OnStderr(e.Data);
        process.OutputDataReceived += (_, e) => server.OnStderr(e.Data);
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var exited = process.WaitForExitAsync();
        var first = await Task.WhenAny(server._listening.Task, exited, Task.Delay(timeout));
        if (first != server._listening.Task)
        {
            server.Kill();
            throw new InvalidOperationException($"{executable} serve did not start listening within {timeout.TotalSeconds} s (exit code {(process.HasExited ? process.ExitCode : "none")}); stderr:\n{server.Stderr}");
        }

        server.BaseAddress = await server._listening.Task;
        return server;
    }

    /// <summary>VmRSS of the server process, in bytes (Linux).</summary>
    public long ResidentBytes()
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException($"/proc/{Pid}/status has no VmRSS");
    }

    /// <summary>SIGTERM, then the exit code (null if it did not exit within <paramref name="timeout"/>; then it is killed).</summary>
    public async Task<int?> StopAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            Signal(_process.Id);
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return _process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            Kill();
            return null;
        }
    }

    /// <summary>Sends SIGTERM (what Kubernetes and `docker stop` send).</summary>
    public void Terminate() => Signal(_process.Id);

    public Task WaitForExitAsync(CancellationToken token) => _process.WaitForExitAsync(token);

    public int ExitCode => _process.ExitCode;

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    private void OnStderr(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_stderr)
        {
            _stderr.AppendLine(line);
        }

        var match = Listening().Match(line);
        if (match.Success)
        {
            _listening.TrySetResult(new Uri(match.Groups[1].Value));
        }
    }

    private static void Signal(int pid)
    {
        // SIGTERM = 15; kill(2) through libc: Process.Kill sends SIGKILL, which tests nothing.
        _ = Kill(pid, 15);
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [GeneratedRegex(@" on (http://127\.0\.0\.1:\d+)")]
    private static partial Regex Listening();
}
