using System.Globalization;
using System.Text;

namespace GraphCompiler.Benchmarks;

/// <summary>The Markdown report: model throughput (with generated ÷ peer), int8 ratios, the generator, the data pipeline.</summary>
public static class Report
{
    public static string Markdown(IReadOnlyList<CaseResult> results, bool smoke, int iterations, string machine)
    {
        var peak = results.Where(r => r.Case.StartsWith("gemm", StringComparison.Ordinal)).Select(r => r.GflopPerSecond).DefaultIfEmpty(double.NaN).Max();
        var md = new StringBuilder();
        md.AppendLine($"# Benchmarks ({(smoke ? "smoke: tiny sizes, 1 iteration, numbers mean nothing" : $"median of {iterations} iterations after a warm-up")})");
        md.AppendLine();
        md.AppendLine($"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; {Environment.ProcessorCount} cores; {machine}. Each case runs in its own process; peak memory is that process's VmHWM.");
        md.AppendLine(F($"Measured GEMM peak: {peak:F0} GFLOP/s."));
        md.AppendLine();
        md.AppendLine("| case | model | batch×seq | peer | median ms | seq/s | GFLOP/s | % of GEMM peak | peak memory MB | generated ÷ peer (seq/s) |");
        md.AppendLine("|---|---|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results.Where(r => r.Gflop > 0))
        {
            var generated = results.FirstOrDefault(g => g.Case == r.Case && g.Model == r.Model && g.Batch == r.Batch && g.Seq == r.Seq && g.Peer.StartsWith("generated", StringComparison.Ordinal));
            var ratio = generated is null || r == generated || r.Case.StartsWith("gemm", StringComparison.Ordinal) ? "" : F($"{generated.SequencesPerSecond / r.SequencesPerSecond:F2}×");
            md.AppendLine(F($"| {r.Case} | {r.Model} | {r.Batch}×{r.Seq} | {r.Peer} | {r.MedianSeconds * 1000:F1} | {r.SequencesPerSecond:F1} | {r.GflopPerSecond:F1} | {100 * r.GflopPerSecond / peak:F0} % | {r.PeakBytes / 1048576.0:F0} | {ratio} |"));
        }

        var training = results.Where(r => r.PhaseMilliseconds is { Length: 3 } && r.Peer.StartsWith("generated", StringComparison.Ordinal)).ToList();
        if (training.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("Training steps by phase (medians, ms; > 1: the generated model is faster):");
            md.AppendLine();
            md.AppendLine("| model | batch×seq | generated fwd / bwd / AdamW | stock fwd / bwd / AdamW | fwd+bwd: stock ÷ generated | whole step: stock ÷ generated | peak memory: generated / stock MB |");
            md.AppendLine("|---|---|---|---|---:|---:|---|");
            foreach (var g in training)
            {
                var stock = results.FirstOrDefault(r => r.Case == g.Case && r.Model == g.Model && r.Batch == g.Batch && r.Seq == g.Seq && r.PhaseMilliseconds is { Length: 3 } && r != g);
                if (stock is null)
                {
                    continue;
                }

                var (gp, sp) = (g.PhaseMilliseconds!, stock.PhaseMilliseconds!);
                md.AppendLine(F($"| {g.Model} | {g.Batch}×{g.Seq} | {gp[0]:F0} / {gp[1]:F0} / {gp[2]:F0} | {sp[0]:F0} / {sp[1]:F0} / {sp[2]:F0} | {(sp[0] + sp[1]) / (gp[0] + gp[1]):F2}× | {stock.MedianSeconds / g.MedianSeconds:F2}× | {g.PeakBytes / 1048576.0:F0} / {stock.PeakBytes / 1048576.0:F0} |"));
            }
        }

        var int8 = results.Where(r => r.Case == "inference int8" && r.Peer.StartsWith("generated", StringComparison.Ordinal)).ToList();
        if (int8.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("int8 speed ratios (> 1: the generated int8 module is faster):");
            md.AppendLine();
            md.AppendLine("| model | batch×seq | generated int8 ms | own fp32 ms | ORT int8 ms | int8 ÷ own fp32 | int8 ÷ ORT int8 |");
            md.AppendLine("|---|---|---:|---:|---:|---:|---:|");
            foreach (var q in int8)
            {
                var fp32 = results.FirstOrDefault(r => r.Case == "inference fp32" && r.Peer == "generated" && r.Model == q.Model && r.Batch == q.Batch && r.Seq == q.Seq);
                var ort = results.FirstOrDefault(r => r.Case == "inference int8" && r.Peer.StartsWith("onnxruntime", StringComparison.Ordinal) && r.Model == q.Model && r.Batch == q.Batch && r.Seq == q.Seq);
                md.AppendLine(F($"| {q.Model} | {q.Batch}×{q.Seq} | {q.MedianSeconds * 1000:F1} | {Ms(fp32)} | {Ms(ort)} | {Speedup(fp32, q)} | {Speedup(ort, q)} |"));
            }
        }

        var generator = results.Where(r => r.Case.StartsWith("generator", StringComparison.Ordinal)).ToList();
        if (generator.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("| generator | model | run | median ms | min ms | peak memory MB | note |");
            md.AppendLine("|---|---|---|---:|---:|---:|---|");
            foreach (var r in generator)
            {
                md.AppendLine(F($"| {r.Case} | {r.Model} | {r.Peer} | {r.MedianSeconds * 1000:F1} | {r.MinSeconds * 1000:F1} | {r.PeakBytes / 1048576.0:F0} | {r.Note} |"));
            }
        }

        var data = results.Where(r => r.Case.StartsWith("data", StringComparison.Ordinal)).ToList();
        if (data.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("| data pipeline | vocabulary | split | pairs | max length | median ms | pairs/s | note |");
            md.AppendLine("|---|---|---|---:|---:|---:|---:|---|");
            foreach (var r in data)
            {
                md.AppendLine(F($"| {r.Case} | {r.Model} | {r.Peer} | {r.Batch} | {r.Seq} | {r.MedianSeconds * 1000:F1} | {r.SequencesPerSecond:F0} | {r.Note} |"));
            }
        }

        return md.ToString();
    }

    private static string Ms(CaseResult? r) => r is null ? "-" : F($"{r.MedianSeconds * 1000:F1}");

    private static string Speedup(CaseResult? baseline, CaseResult int8) => baseline is null ? "-" : F($"{baseline.MedianSeconds / int8.MedianSeconds:F2}×");

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
