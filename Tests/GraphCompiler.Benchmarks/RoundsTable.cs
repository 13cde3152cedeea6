using System.Globalization;
using System.Text;

namespace GraphCompiler.Benchmarks;

/// <summary>The per-instruction-set table (issue 17's rows): every case runs once per round, one process each, the rounds
/// interleaved so a noisy minute hits both sides of a ratio; a row's ratio is the median of its per-round ratios.</summary>
public static class RoundsTable
{
    /// <summary>A row: the generated case against one peer (speed ratio = peer ms ÷ generated ms).</summary>
    public sealed record Row(string Label, string Shape, string Generated, string PeerLabel, string Peer);

    public static IReadOnlyList<Row> Rows { get; } =
    [
        new("inference fp32", "32×128", "infer:generated:minilm:128", "onnxruntime (package model.onnx)", "infer:onnxruntime:minilm:128"),
        new("inference fp32", "32×128", "infer:generated:minilm:128", "stock modules", "infer:stock:minilm:128"),
        new("inference fp32", "1×128", "infer:generated:minilm:128:1", "onnxruntime (package model.onnx)", "infer:onnxruntime:minilm:128:1"),
        new("inference fp32", "1×128", "infer:generated:minilm:128:1", "stock modules", "infer:stock:minilm:128:1"),
        new("inference int8", "32×128", "int8:generated:minilm:128", "onnxruntime dynamic int8 (our export)", "int8:onnxruntime:minilm:128"),
        new("inference int8", "32×128", "int8:generated:minilm:128", "own fp32", "infer:generated:minilm:128"),
        new("inference int8", "1×128", "int8:generated:minilm:128:1", "onnxruntime dynamic int8 (our export)", "int8:onnxruntime:minilm:128:1"),
        new("inference int8", "1×128", "int8:generated:minilm:128:1", "own fp32", "infer:generated:minilm:128:1"),
        new("training step", "32×64", "train:generated:minilm:64", "stock modules + autograd", "train:stock:minilm:64"),
    ];

    /// <summary>Every case the rows name, each once, in the order of first use.</summary>
    public static IReadOnlyList<string> Cases => Rows.SelectMany(r => new[] { r.Generated, r.Peer }).Distinct().ToList();

    public static string Markdown(IReadOnlyList<IReadOnlyDictionary<string, CaseResult>> rounds, int iterations, string machine)
    {
        string Ms(string spec) => string.Join(", ", rounds.Select(r => (r[spec].MedianSeconds * 1000).ToString("F1", CultureInfo.InvariantCulture)));
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; {Environment.ProcessorCount} cores; {machine}.");
        md.AppendLine(CultureInfo.InvariantCulture, $"{rounds.Count} interleaved rounds, one process per case, median of {iterations} iterations after a warm-up; ratio = median of the per-round ratios.");
        md.AppendLine();
        md.AppendLine("| case | batch×seq | generated ms (per round) | peer | peer ms (per round) | generated ÷ peer (speed) |");
        md.AppendLine("|---|---|---|---|---|---:|");
        foreach (var row in Rows)
        {
            var ratios = rounds.Select(r => r[row.Peer].MedianSeconds / r[row.Generated].MedianSeconds).Order().ToList();
            var median = ratios.Count % 2 == 1 ? ratios[ratios.Count / 2] : (ratios[ratios.Count / 2 - 1] + ratios[ratios.Count / 2]) / 2;
            md.AppendLine(CultureInfo.InvariantCulture, $"| {row.Label} | {row.Shape} | {Ms(row.Generated)} | {row.PeerLabel} | {Ms(row.Peer)} | {median:F2}× |");
        }

        var phases = rounds[0];
        foreach (var spec in Cases.Where(c => phases[c].PhaseMilliseconds is { Length: 3 }))
        {
            var p = phases[spec].PhaseMilliseconds!;
            md.AppendLine();
            md.Append(CultureInfo.InvariantCulture, $"{spec} (round 1): fwd / bwd / AdamW {p[0]:F0} / {p[1]:F0} / {p[2]:F0} ms, peak memory {phases[spec].PeakBytes / 1048576.0:F0} MB.");
        }

        md.AppendLine();
        return md.ToString();
    }
}
