using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics.X86;
using GraphCompiler.Samples.Predict;
using GraphCompiler.Samples.Predict.Launcher;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace GraphCompiler.Tests.Samples;

/// <summary>The published deployment binary end to end: out/predict/predict (the launcher) and its per-level builds, as
/// scripts/publish-predict.sh leaves them (scripts/test.sh publishes before the tests run), on a few MRPC dev rows, at
/// the host's own level and forced to x86-64-v3, against <see cref="Predictor"/> at the same level.</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
public class PredictBinaryTests(PredictFixture fixture, ITestOutputHelper output) : IClassFixture<PredictFixture>
{
    /// <summary>Largest difference allowed between the binary's and its reference's probability of a label. Both run the
    /// same int8 graph with the same kernels at the same ISA, NativeAOT against the JIT; the output file prints 6
    /// decimals.</summary>
    private const double Tolerance = 1e-4;

    internal static readonly string PublishDir = Path.GetFullPath(Path.Combine(Snapshot.Root, "..", "..", "out", "predict"));

    private static string Launcher => Path.Combine(PublishDir, "predict");

    /// <summary>The same program built for the JIT by the solution build (the configuration these tests were built in).</summary>
    private static string JitPredict => Path.GetFullPath(Path.Combine(Snapshot.Root, "..", "..", "Samples", "Predict", "bin", Configuration, "net10.0", "predict"));

#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    /// <summary>The .NET switches that hold this process below its CPU's level (a lower ISA level's test run sets them).</summary>
    private static readonly string[] IsaSwitches = ["DOTNET_EnableAVX512", "DOTNET_EnableAVX512F", "DOTNET_EnableAVX2", "DOTNET_EnableHWIntrinsic"];

    /// <summary>The level the launcher sees: /proc/cpuinfo's flags and CPUID's OS-independent ones.</summary>
    private static int CpuLevel => CpuLevels.Detect(CpuLevels.HostFlags(File.ReadAllText("/proc/cpuinfo"), CpuLevels.HardwareCpuId));

    /// <summary>This process's x86-64 level as .NET sees it (CPUID and XGETBV, less what <see cref="IsaSwitches"/> turn
    /// off): the level of the in-process reference, and an independent check of the launcher's reading of
    /// /proc/cpuinfo.</summary>
    private static int HostLevel =>
        Avx512F.IsSupported && Avx512BW.IsSupported && Avx512CD.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported ? 4
        : Avx2.IsSupported && Fma.IsSupported && Bmi1.IsSupported && Bmi2.IsSupported && Lzcnt.IsSupported ? 3
        : Sse42.IsSupported && Ssse3.IsSupported && Popcnt.IsSupported ? 2
        : CpuLevels.Baseline;

    [Fact]
    public void TheHostsCpuInfoGivesTheLevelDotnetSees()
    {
        if (IsaSwitches.Any(s => Environment.GetEnvironmentVariable(s) == "0"))
        {
            Assert.True(CpuLevel >= HostLevel, $"/proc/cpuinfo gives {CpuLevels.Name(CpuLevel)}, below {CpuLevels.Name(HostLevel)} that .NET runs here");
        }
        else
        {
            Assert.Equal(HostLevel, CpuLevel);
        }
    }

    [Fact]
    public void ThePublishedFolderHasTheLauncherABuildPerLevelAndLibtorchOnce()
    {
        var published = PublishedOrFail();

        foreach (var level in CpuLevels.Levels)
        {
            Assert.True(File.Exists(Path.Combine(published, LaunchPlan.BuildName(level))), $"{LaunchPlan.BuildName(level)} missing in {published}");
        }

        var torch = Directory.GetFiles(published, "libtorch_cpu.so", SearchOption.AllDirectories);
        Assert.Equal([Path.Combine(published, "libtorch_cpu.so")], torch);
        // The launcher is a small program of its own, not a copy of a build.
        Assert.True(new FileInfo(Launcher).Length < new FileInfo(Path.Combine(published, LaunchPlan.BuildName(2))).Length / 2);
    }

    /// <summary>At this process's level the binary must predict what the Predictor in this process does (libtorch and
    /// .NET at the same level: the host's own, or the one this test run is held to). Forced to x86-64-v3, it must predict what the Predictor does under the JIT held to
    /// the same ISA (a child process with AVX-512 off for .NET and the same libtorch variables): libtorch's AVX2 and
    /// AVX-512 kernels round differently, and int8 quantization turns such last-bit differences into moves of up to
    /// 3e-3 in a probability (measured on this host between libtorch's default and AVX2 kernels), so a v3 run is only
    /// comparable with a v3 reference.</summary>
    [Fact]
    public void PredictsAtTheHostsLevelAndForcedToV3AsThePredictorDoesAtThatLevel()
    {
        PublishedOrFail();
        var input = Path.Combine(fixture.Dir, "binary-dev.tsv");
        File.WriteAllLines(input, ShortestDevRows(6));
        var inProcess = Path.Combine(fixture.Dir, "binary-in-process.out.tsv");
        Assert.Equal(0, Predictor.Run(new PredictSettings(fixture.Int8Prefix, input, inProcess), TextWriter.Null).ExitCode);

        var host = HostLevel;
        // Held below the CPU's level (a lower ISA level's test run), the binary is held there too; libtorch's own switches
        // reach the child from this process's environment.
        var hostEnvironment = host < CpuLevel ? new Dictionary<string, string> { [LaunchPlan.ForceVariable] = CpuLevels.Name(host) } : new();
        // libtorch and oneDNN pick their kernels at run time: hold them to AVX2 as well, as on a v3 CPU.
        var v3 = new Dictionary<string, string> { [LaunchPlan.ForceVariable] = "x86-64-v3", ["ATEN_CPU_CAPABILITY"] = "avx2", ["ONEDNN_MAX_CPU_ISA"] = "AVX2" };
        var v3Reference = Path.Combine(fixture.Dir, "binary-jit-v3.out.tsv");
        // .NET 10 reads DOTNET_EnableAVX512 (DOTNET_EnableAVX512F is the older name).
        var jit = Run(JitPredict, new(v3) { ["DOTNET_EnableAVX512"] = "0", ["DOTNET_EnableAVX512F"] = "0", ["GRAPHCOMPILER_VERBOSE"] = "1" }, "--model", fixture.Int8Prefix, "--input", input, "--output", v3Reference);
        Assert.True(jit.ExitCode == 0, $"{JitPredict}: exit code {jit.ExitCode}; stderr: {jit.Stderr}");
        Assert.Contains("uses 256-bit vectors", jit.Stderr);

        foreach (var (name, level, environment, reference) in new[] { ("host", host, hostEnvironment, inProcess), ("v3", 3, v3, v3Reference) })
        {
            var outputFile = Path.Combine(fixture.Dir, $"binary-{name}.out.tsv");
            var run = Run(Launcher, new(environment) { ["GRAPHCOMPILER_VERBOSE"] = "1" }, "--model", fixture.Int8Prefix, "--input", input, "--output", outputFile);

            Assert.True(run.ExitCode == 0, $"{name}: exit code {run.ExitCode}; stderr: {run.Stderr}");
            // The launcher says which build it chose, and that build says the vector width it was compiled for.
            var build = Path.Combine(PublishDir, LaunchPlan.BuildName(level));
            Assert.Contains($"running {build} (", run.Stderr);
            Assert.Contains($"predict: {build} uses {(level == 4 ? 512 : level == 3 ? 256 : 128)}-bit vectors", run.Stderr);

            var expected = ReadPredictions(reference);
            var predicted = ReadPredictions(outputFile);
            Assert.Equal(6, expected.Count);
            Assert.Equal(expected.Keys, predicted.Keys);
            output.WriteLine($"{name}: largest |ΔP(paraphrase)| against {Path.GetFileName(reference)}: {expected.Max(e => Math.Abs(predicted[e.Key].Paraphrase - e.Value.Paraphrase)):G3}");
            foreach (var (index, (label, paraphrase)) in expected)
            {
                Assert.True(predicted[index].Label == label, $"{name}: row {index}: label {predicted[index].Label}, reference {label}");
                Assert.True(Math.Abs(predicted[index].Paraphrase - paraphrase) <= Tolerance,
                    $"{name}: row {index}: P(paraphrase) {predicted[index].Paraphrase} vs {paraphrase} (tolerance {Tolerance})");
            }
        }
    }

    [Fact]
    public void HelpAndTheBuildsExitCodesPassThroughTheLauncher()
    {
        PublishedOrFail();
        var help = Run(Launcher, new(), "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("Usage:", help.Stdout);
        Assert.Contains("--model", help.Stdout);

        // The build's own error (exit code 1, "error: file not found"), not the launcher's; the argument with a space and
        // an accent arrives as it was given.
        var missing = Path.Combine(fixture.Dir, "no such export é");
        var run = Run(Launcher, new(), "--model", missing, "--input", missing + ".tsv", "--output", missing + ".out");
        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith($"error: file not found: {missing}-symbol.json", run.Stderr);
    }

    [Fact]
    public void ALinkToTheLauncherRunsTheBuildsBesideTheRealFile()
    {
        PublishedOrFail();
        var link = Path.Combine(fixture.Dir, "bin", "predict");
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        File.Delete(link);
        File.CreateSymbolicLink(link, Launcher);

        var run = Run(link, new() { ["GRAPHCOMPILER_VERBOSE"] = "1" }, "--help");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains($"running {Path.Combine(PublishDir, LaunchPlan.BuildName(CpuLevel))} (", run.Stderr);
        Assert.Contains("--model", run.Stdout);
    }

    [Fact]
    public void ALevelTheHostLacksOrAnUnknownLevelIsAOneLineErrorNotACrash()
    {
        PublishedOrFail();
        var unknown = Run(Launcher, new() { [LaunchPlan.ForceVariable] = "x86-64-v9" }, "--help");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Equal("predict: GRAPHCOMPILER_CPU_LEVEL=x86-64-v9 is not a level: use one of x86-64-v2, x86-64-v3, x86-64-v4\n", unknown.Stderr);
        Assert.Empty(unknown.Stdout);

        var v4 = Run(Launcher, new() { [LaunchPlan.ForceVariable] = "x86-64-v4", ["GRAPHCOMPILER_VERBOSE"] = "1" }, "--help");
        if (CpuLevel >= 4)
        {
            Assert.Equal(0, v4.ExitCode);
            Assert.Contains($"running {Path.Combine(PublishDir, "predict-x86-64-v4")} (forced by GRAPHCOMPILER_CPU_LEVEL)", v4.Stderr);
        }
        else
        {
            Assert.Equal(1, v4.ExitCode);
            Assert.StartsWith("predict: GRAPHCOMPILER_CPU_LEVEL=x86-64-v4: this CPU lacks avx512f", v4.Stderr);
            Assert.Single(v4.Stderr.TrimEnd('\n').Split('\n'));
            Assert.Empty(v4.Stdout);
        }
    }

    /// <summary>The header and the <paramref name="rows"/> dev rows with the shortest sentence pairs (the smallest
    /// bucket: int8 is slow on CPUs without VNNI).</summary>
    private static IEnumerable<string> ShortestDevRows(int rows)
    {
        var lines = File.ReadAllLines(Path.Combine(Mrpc.Directory, "dev.tsv"));
        return lines.Take(1).Concat(lines.Skip(1).OrderBy(l => l.Length).ThenBy(l => l, StringComparer.Ordinal).Take(rows));
    }

    /// <summary>index → (label, probability of label 1), from predict's output.</summary>
    private static SortedDictionary<int, (int Label, double Paraphrase)> ReadPredictions(string path)
    {
        var result = new SortedDictionary<int, (int, double)>();
        foreach (var line in File.ReadAllLines(path))
        {
            var f = line.Split('\t');
            Assert.Equal(3, f.Length);
            var label = int.Parse(f[1], CultureInfo.InvariantCulture);
            var probability = double.Parse(f[2], CultureInfo.InvariantCulture);
            result.Add(int.Parse(f[0], CultureInfo.InvariantCulture), (label, label == 1 ? probability : 1 - probability));
        }

        return result;
    }

    /// <summary>out/predict, checked to exist and to have been published after the code the tests run was built (a
    /// publish compiles whatever changed; an older one would test old code).</summary>
    internal static string PublishedOrFail()
    {
        var stamp = Path.Combine(PublishDir, "..", "predict-build", "published");
        if (!File.Exists(Launcher) || !File.Exists(stamp))
        {
            throw new XunitException($"{Launcher} is not published: run `bash scripts/publish-predict.sh` (scripts/test.sh does before the tests).");
        }

        var published = File.GetLastWriteTimeUtc(stamp);
        foreach (var assembly in new[] { typeof(Predictor).Assembly, typeof(LaunchPlan).Assembly, typeof(GraphCompiler.Runtime.Symbol.ModelExport).Assembly, typeof(GraphCompiler.ModelDefs.MiniLmClassifierInt8Module).Assembly })
        {
            if (File.GetLastWriteTimeUtc(assembly.Location) > published)
            {
                throw new XunitException($"{PublishDir} was last published before {Path.GetFileName(assembly.Location)} was built: run `bash scripts/publish-predict.sh` again.");
            }
        }

        return PublishDir;
    }

    private sealed record RunResult(int ExitCode, string Stdout, string Stderr);

    private RunResult Run(string executable, Dictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // The launcher's switches reach a run only when it sets them; so do .NET's ISA switches (a native build's level is
        // the launcher's choice). libtorch's switches come from this process, as the in-process reference runs with them.
        foreach (var name in IsaSwitches.Append(LaunchPlan.ForceVariable).Append("GRAPHCOMPILER_VERBOSE"))
        {
            start.Environment.Remove(name);
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start) ?? throw new XunitException($"could not start {executable}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            throw new XunitException($"{executable} {string.Join(' ', args)} did not finish in 10 minutes");
        }

        var result = new RunResult(process.ExitCode, stdout.Result, stderr.Result);
        output.WriteLine($"{Path.GetFileName(executable)} {string.Join(' ', args)} [{string.Join(' ', environment.Select(e => $"{e.Key}={e.Value}"))}] → exit {result.ExitCode}\n{result.Stderr}");
        return result;
    }
}
