using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using GraphCompiler.Benchmarks;
using GraphCompiler.Runtime.Weights;

// Usage: bench [--smoke] [--iterations N] [--out FILE.md] [--data MRPC_DIR]   (a child process runs one case: --case SPEC)
//        bench --rounds R [--iterations N] [--out FILE.md]   (the per-instruction-set table: RoundsTable's cases, R interleaved rounds)
var argList = args.ToList();
string? Arg(string name) => argList.IndexOf(name) is var i and >= 0 && i + 1 < argList.Count ? argList[i + 1] : null;
var iterations = int.Parse(Arg("--iterations") ?? (argList.Contains("--smoke") ? "1" : "5"), CultureInfo.InvariantCulture);
if (Arg("--data") is { } data)
{
    Environment.SetEnvironmentVariable("MRPC_DIR", Path.GetFullPath(data)); // children inherit it
}

if (Arg("--case") is { } spec)
{
    Console.WriteLine(JsonSerializer.Serialize(Cases.Run(spec, iterations)));
    return 0;
}

if (Arg("--rounds") is { } roundsArg)
{
    var rounds = new List<IReadOnlyDictionary<string, CaseResult>>();
    for (var round = 1; round <= int.Parse(roundsArg, CultureInfo.InvariantCulture); round++)
    {
        var byCase = new Dictionary<string, CaseResult>();
        foreach (var s in RoundsTable.Cases)
        {
            Console.Error.WriteLine($"bench: round {round}: {s} …");
            byCase[s] = RunChild(s, iterations);
        }

        rounds.Add(byCase);
    }

    var table = RoundsTable.Markdown(rounds, iterations, Machine());
    Console.WriteLine(table);
    var tableOut = Arg("--out") ?? Path.Combine("out", "bench-rounds.md");
    AtomicFile.Write(tableOut, s => s.Write(Encoding.UTF8.GetBytes(table)));
    return 0;
}

var smoke = argList.Contains("--smoke");
var output = Arg("--out") ?? Path.Combine("out", smoke ? "bench-smoke.md" : "bench.md");
var specs = smoke
    ? new[]
    {
        "gemm:torch:256:0",
        "infer:generated:minilm:32", "infer:stock:minilm:32", "infer:onnxruntime:minilm:32", "infer:onnxruntime-export:minilm:32",
        "infer:generated:minilm:128:1",
        "int8:generated:minilm:32", "int8:onnxruntime:minilm:32", "int8:generated:minilm:128:1",
        "train:generated:minilm:32", "train:stock:minilm:32",
        "generate:full:12:0", "generate:incremental:12:0",
        "data:mrpc:dev:128",
    }
    : new[]
    {
        "gemm:torch:2048:0",
        "infer:generated:minilm:64", "infer:stock:minilm:64", "infer:onnxruntime:minilm:64",
        "infer:generated:minilm:128", "infer:stock:minilm:128", "infer:onnxruntime:minilm:128", "infer:onnxruntime-export:minilm:128",
        "infer:generated:minilm:128:1", "infer:stock:minilm:128:1", "infer:onnxruntime:minilm:128:1", "infer:onnxruntime-export:minilm:128:1",
        "infer:generated:bert_12_768_12:128", "infer:stock:bert_12_768_12:128", "infer:onnxruntime-export:bert_12_768_12:128",
        "infer:generated:bert_12_768_12:128:1", "infer:stock:bert_12_768_12:128:1", "infer:onnxruntime-export:bert_12_768_12:128:1",
        "int8:generated:minilm:128", "int8:onnxruntime:minilm:128", "int8:generated:minilm:128:1", "int8:onnxruntime:minilm:128:1",
        "int8:generated:bert_12_768_12:128", "int8:onnxruntime:bert_12_768_12:128", "int8:generated:bert_12_768_12:128:1", "int8:onnxruntime:bert_12_768_12:128:1",
        "train:generated:minilm:32", "train:stock:minilm:32",
        "train:generated:minilm:48", "train:stock:minilm:48",
        "train:generated:minilm:64", "train:stock:minilm:64",
        "train:generated:minilm:80", "train:stock:minilm:80",
        "train:generated:minilm:128", "train:stock:minilm:128",
        "train:generated:bert_12_768_12:64", "train:stock:bert_12_768_12:64",
        "generate:full:12:0", "generate:full:24:0", "generate:incremental:12:0", "generate:incremental:24:0",
        "data:mrpc:train:128",
    };

var results = new List<CaseResult>();
foreach (var s in specs)
{
    Console.Error.WriteLine($"bench: {s} …");
    results.Add(RunChild(s, iterations));
}

var md = Report.Markdown(results, smoke, iterations, Machine());
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
    // The model name alone does not tell an AMD EPYC Zen 3 from a Zen 4: family/model and the vector flags do.
    var lines = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").TakeWhile(l => l.Length > 0).ToList() : new List<string>();
    string? Field(string name) => lines.FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal) && l[name.Length..].TrimStart().StartsWith(':'))?.Split(':', 2)[1].Trim();
    var flags = (Field("flags") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
    var vector = new[] { "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8" }.Where(flags.Contains);
    var forced = new[] { "DOTNET_EnableAVX512", "DOTNET_EnableAVX512F", "DOTNET_EnableAVX2", "DOTNET_EnableAVXVNNI", "DOTNET_EnableHWIntrinsic", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "GRAPHCOMPILER_INT8_GEMM" }
        .Where(v => Environment.GetEnvironmentVariable(v) is { Length: > 0 }).Select(v => $"{v}={Environment.GetEnvironmentVariable(v)}").ToList();
    return $"{Field("model name") ?? "unknown CPU"} (family {Field("cpu family") ?? "?"} model {Field("model") ?? "?"}; {string.Join(" ", vector)}); " +
           $"kernels: {GraphCompiler.Runtime.CpuKernelInfo.Describe()}" + (forced.Count > 0 ? $"; FORCED: {string.Join(" ", forced)}" : "");
}
