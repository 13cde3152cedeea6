using System.Globalization;
using System.Text;
using GraphCompiler.LoadTest;

// The full serving load test (results go to BENCHMARKS.md):
//   dotnet run -c Release --project Tests/GraphCompiler.LoadTest -- [--seconds 30] [--configs int8,fp32,ort-fp32,ort-int8]
// It needs the published binary (bash scripts/publish-predict.sh) and an export (bash scripts/run.sh writes out/mrpc/export).
var options = Options.Parse(args);
var pairs = Options.Pairs(options.Data);
var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
var report = new StringBuilder();
report.AppendLine(CultureInfo.InvariantCulture, $"Serving load test: {cpu}, {Environment.ProcessorCount} cores (client and server share them); {options.Seconds} s per level; single-pair requests ({pairs.Count} {(options.Data is null ? "built-in" : "MRPC dev")} pairs, round-robin); `predict serve` defaults (batch delay 2 ms)");
report.AppendLine();
report.AppendLine("| server | concurrency | requests/s | p50 ms | p99 ms | requests | errors | RSS before → after (MB) |");
report.AppendLine("|---|---:|---:|---:|---:|---:|---:|---|");
var failed = false;
foreach (var config in options.Configs)
{
    var (label, serveArgs) = config switch
    {
        "int8" => ("generated int8", new[] { "--model", Path.Combine(options.Export, "minilm-int8") }),
        "fp32" => ("generated fp32", ["--model", Path.Combine(options.Export, "minilm-fp32")]),
        "ort-fp32" => ("ONNX Runtime fp32 (our ONNX export)", ["--model", Path.Combine(options.Export, "minilm-fp32"), "--engine", "onnxruntime"]),
        "ort-int8" => ("ONNX Runtime dynamic int8 (of our export)", ["--model", Path.Combine(options.Export, "minilm-fp32"), "--engine", "onnxruntime", "--onnx", Path.Combine(options.Export, "minilm-fp32-ort-dynamic-int8.onnx")]),
        _ => throw new ArgumentException($"--configs: unknown '{config}' (int8, fp32, ort-fp32, ort-int8)"),
    };
    Console.Error.WriteLine($"{label}: starting {options.Predict} serve {string.Join(' ', serveArgs)}");
    using var server = await ServerProcess.StartAsync(options.Predict, serveArgs, TimeSpan.FromMinutes(2));
    using var client = LoadGenerator.Client(options.Levels.Max());
    var url = new Uri(server.BaseAddress, "/v2/models/minilm/infer");
    // Warm-up: every bucket the levels will use gets its first (slow) call here.
    await LoadGenerator.RunAsync(client, url, pairs, 8, TimeSpan.FromSeconds(Math.Min(5, options.Seconds)), 2000);
    await LoadGenerator.RunAsync(client, url, pairs, options.Levels.Max(), TimeSpan.FromSeconds(Math.Min(5, options.Seconds)), 2000);
    var before = server.ResidentBytes();
    var results = new List<LoadResult>();
    foreach (var level in options.Levels)
    {
        var result = await LoadGenerator.RunAsync(client, url, pairs, level, TimeSpan.FromSeconds(options.Seconds), options.MaxRequests);
        Console.Error.WriteLine($"  concurrency {level}: {result.Throughput:F1} req/s, p50 {result.P50Ms:F2} ms, p99 {result.P99Ms:F2} ms, {result.Errors} errors {string.Join(" | ", result.ErrorSamples)}");
        results.Add(result);
    }

    var after = server.ResidentBytes();
    var exit = await server.StopAsync(TimeSpan.FromSeconds(30));
    foreach (var r in results)
    {
        report.AppendLine(CultureInfo.InvariantCulture,
            $"| {label} | {r.Concurrency} | {r.Throughput:F1} | {r.P50Ms:F2} | {r.P99Ms:F2} | {r.Requests} | {r.Errors} | {before / 1e6:F0} → {after / 1e6:F0} ({(after - before) * 100.0 / before:+0.0;-0.0} %) |");
    }

    var growth = (after - before) / (double)before;
    if (results.Any(r => r.Errors > 0) || growth > 0.10 || exit != 0)
    {
        failed = true;
        Console.Error.WriteLine($"{label}: FAILED: errors {results.Sum(r => r.Errors)}, RSS growth {growth:P1}, exit code after SIGTERM {exit?.ToString(CultureInfo.InvariantCulture) ?? "none (killed)"}");
    }
}

Console.WriteLine(report);
Directory.CreateDirectory(Path.GetDirectoryName(options.Output)!);
File.WriteAllText(options.Output, report.ToString());
Console.Error.WriteLine($"written: {options.Output}");
return failed ? 1 : 0;

internal sealed record Options(string Predict, string Export, string? Data, int Seconds, int[] Levels, string[] Configs, int MaxRequests, string Output)
{
    public static Options Parse(string[] args)
    {
        string Get(string name, string fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        var mrpc = Environment.GetEnvironmentVariable("MRPC_DIR") is { Length: > 0 } env ? env : Path.GetFullPath(Path.Combine("..", "shared", "data", "mrpc"));
        var data = Get("--data", mrpc);
        return new Options(
            Get("--predict", Path.GetFullPath("out/predict/predict")),
            Get("--export", Path.GetFullPath("out/mrpc/export")),
            File.Exists(Path.Combine(data, "dev.tsv")) ? data : null,
            int.Parse(Get("--seconds", "30"), CultureInfo.InvariantCulture),
            Get("--levels", "1,8,64").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(),
            Get("--configs", "int8,fp32,ort-fp32,ort-int8").Split(','),
            int.Parse(Get("--max-requests", "200000"), CultureInfo.InvariantCulture),
            Get("--output", Path.GetFullPath("out/serve-bench.md")));
    }

    /// <summary>MRPC dev's pairs when the data is there, else a few pairs written for this test.</summary>
    public static IReadOnlyList<(string A, string B)> Pairs(string? data) => data is null
        ? [("The cat sat on the mat.", "A cat was sitting on the mat."), ("Stocks fell sharply on Monday.", "Shares dropped steeply at the start of the week."), ("He plays the violin.", "The weather was cold all week.")]
        : File.ReadLines(Path.Combine(data, "dev.tsv")).Skip(1).Select(l => l.Split('\t')).Where(f => f.Length >= 5).Select(f => (f[3], f[4])).ToArray();
}
