using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using GraphCompiler.Benchmarks;
using GraphCompiler.Runtime.Weights;

// Usage: bench [--smoke] [--iterations N] [--out FILE.md]   (a child process runs one case: --case SPEC)
var argList = args.ToList();
string? Arg(string name) => argList.IndexOf(name) is var i and >= 0 && i + 1 < argList.Count ? argList[i + 1] : null;
var iterations = int.Parse(Arg("--iterations") ?? (argList.Contains("--smoke") ? "1" : "5"), CultureInfo.InvariantCulture);

if (Arg("--case") is { } spec)
{
    Console.WriteLine(JsonSerializer.Serialize(Cases.Run(spec, iterations)));
    return 0;
}

var smoke = argList.Contains("--smoke");
var output = Arg("--out") ?? Path.Combine("out", smoke ? "bench-smoke.md" : "bench.md");
var specs = smoke
    ? new[] { "gemm:torch:256:0", "infer:generated:minilm:32", "infer:stock:minilm:32", "infer:onnxruntime:minilm:32", "train:generated:minilm:32", "train:stock:minilm:32" }
    : new[]
    {
        "gemm:torch:2048:0",
        "infer:generated:minilm:64", "infer:stock:minilm:64", "infer:onnxruntime:minilm:64",
        "infer:generated:minilm:128", "infer:stock:minilm:128", "infer:onnxruntime:minilm:128",
        "infer:generated:bert_12_768_12:128", "infer:stock:bert_12_768_12:128",
        "train:generated:minilm:64", "train:stock:minilm:64",
        "train:generated:bert_12_768_12:64", "train:stock:bert_12_768_12:64",
    };

var results = new List<CaseResult>();
foreach (var s in specs)
{
    Console.Error.WriteLine($"bench: {s} …");
    results.Add(RunChild(s, iterations));
}

var peak = results.Where(r => r.Case.StartsWith("gemm", StringComparison.Ordinal)).Select(r => r.GflopPerSecond).DefaultIfEmpty(double.NaN).Max();
var md = new StringBuilder();
md.AppendLine($"# Benchmarks ({(smoke ? "smoke: tiny sizes, 1 iteration, numbers mean nothing" : $"median of {iterations} iterations after a warm-up")})");
md.AppendLine();
md.AppendLine($"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; {Environment.ProcessorCount} cores; {Machine()}. Each case runs in its own process; peak memory is that process's VmHWM.");
md.AppendLine($"Measured GEMM peak: {peak:F0} GFLOP/s.");
md.AppendLine();
md.AppendLine("| case | model | batch×seq | peer | median ms | seq/s | GFLOP/s | % of GEMM peak | peak memory MB | generated ÷ peer (seq/s) |");
md.AppendLine("|---|---|---|---|---:|---:|---:|---:|---:|---:|");
foreach (var r in results)
{
    var generated = results.FirstOrDefault(g => g.Case == r.Case && g.Model == r.Model && g.Seq == r.Seq && g.Peer.StartsWith("generated", StringComparison.Ordinal));
    var ratio = generated is null || r == generated || r.Case.StartsWith("gemm", StringComparison.Ordinal) ? "" : (generated.SequencesPerSecond / r.SequencesPerSecond).ToString("F2", CultureInfo.InvariantCulture) + "×";
    md.AppendLine(string.Create(CultureInfo.InvariantCulture,
        $"| {r.Case} | {r.Model} | {r.Batch}×{r.Seq} | {r.Peer} | {r.MedianSeconds * 1000:F1} | {r.SequencesPerSecond:F1} | {r.GflopPerSecond:F1} | {100 * r.GflopPerSecond / peak:F0} % | {r.PeakBytes / 1048576.0:F0} | {ratio} |"));
}

Console.WriteLine(md);
AtomicFile.Write(output, s => s.Write(Encoding.UTF8.GetBytes(md.ToString())));
AtomicFile.Write(Path.ChangeExtension(output, ".json"), s => JsonSerializer.Serialize(s, results, new JsonSerializerOptions { WriteIndented = true }));
Console.Error.WriteLine($"bench: wrote {output} and its .json");
return 0;

static CaseResult RunChild(string spec, int iterations)
{
    var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    foreach (var a in Environment.GetCommandLineArgs().Take(1).Where(a => a.EndsWith(".dll", StringComparison.Ordinal)))
    {
        start.ArgumentList.Add(a);
    }

    start.ArgumentList.Add("--case");
    start.ArgumentList.Add(spec);
    start.ArgumentList.Add("--iterations");
    start.ArgumentList.Add(iterations.ToString(CultureInfo.InvariantCulture));
    using var process = Process.Start(start)!;
    var stdout = process.StandardOutput.ReadToEnd();
    var stderr = process.StandardError.ReadToEnd();
    process.WaitForExit();
    var line = stdout.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'));
    if (process.ExitCode != 0 || line is null)
    {
        throw new InvalidOperationException($"benchmark case {spec} failed (exit {process.ExitCode}): {stderr}{stdout}");
    }

    return JsonSerializer.Deserialize<CaseResult>(line)!;
}

static string Machine()
{
    var model = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() : null;
    return model ?? "unknown CPU";
}
