using System.Reflection;
using System.Text;
using Xunit.Sdk;

namespace GraphCompiler.Tests.Infrastructure;

/// <summary>The test project's source directory, baked in at build time so tests find committed expected files.</summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class SourceRootAttribute(string path) : Attribute
{
    public string Path { get; } = path;
}

/// <summary>Compares text with a committed expected file. A mismatch fails with a line diff and writes
/// <c>*.received.*</c> beside it; with GC_ACCEPT_SNAPSHOTS=1 the expected file is (re)written instead.
/// A missing expected file fails unless accepting.</summary>
public static class Snapshot
{
    public const string AcceptVariable = "GC_ACCEPT_SNAPSHOTS";

    public static string Root => typeof(Snapshot).Assembly.GetCustomAttribute<SourceRootAttribute>()!.Path;

    public static void Verify(string actual, string relativePath)
    {
        actual = actual.Replace("\r\n", "\n");
        var path = System.IO.Path.Combine(Root, relativePath);
        var accept = Environment.GetEnvironmentVariable(AcceptVariable) == "1";
        var receivedPath = ReceivedPath(path);
        if (accept)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            File.WriteAllText(path, actual, new UTF8Encoding(false));
            File.Delete(receivedPath);
            return;
        }

        if (!File.Exists(path))
        {
            File.WriteAllText(receivedPath, actual, new UTF8Encoding(false));
            throw new XunitException($"No snapshot {relativePath}; wrote {System.IO.Path.GetFileName(receivedPath)}. Review it and run with {AcceptVariable}=1 to accept.");
        }

        var expected = File.ReadAllText(path).Replace("\r\n", "\n");
        if (expected == actual)
        {
            File.Delete(receivedPath);
            return;
        }

        File.WriteAllText(receivedPath, actual, new UTF8Encoding(false));
        throw new XunitException($"Snapshot {relativePath} differs (received written beside it; {AcceptVariable}=1 accepts):\n{Diff(expected, actual)}");
    }

    private static string ReceivedPath(string path)
    {
        var dir = System.IO.Path.GetDirectoryName(path)!;
        var name = System.IO.Path.GetFileName(path).Replace(".verified.", ".received.");
        if (!name.Contains(".received."))
        {
            name += ".received";
        }

        return System.IO.Path.Combine(dir, name);
    }

    /// <summary>A compact line diff: the first differing region with a few lines of context.</summary>
    public static string Diff(string expected, string actual)
    {
        var e = expected.Split('\n');
        var a = actual.Split('\n');
        var start = 0;
        while (start < e.Length && start < a.Length && e[start] == a[start])
        {
            start++;
        }

        var endE = e.Length - 1;
        var endA = a.Length - 1;
        while (endE >= start && endA >= start && e[endE] == a[endA])
        {
            endE--;
            endA--;
        }

        var sb = new StringBuilder();
        for (var i = Math.Max(0, start - 3); i < start; i++)
        {
            sb.Append("  ").AppendLine(e[i]);
        }

        for (var i = start; i <= Math.Min(endE, start + 40); i++)
        {
            sb.Append("- ").AppendLine(e[i]);
        }

        for (var i = start; i <= Math.Min(endA, start + 40); i++)
        {
            sb.Append("+ ").AppendLine(a[i]);
        }

        return $"@@ line {start + 1} @@\n{sb}";
    }
}
