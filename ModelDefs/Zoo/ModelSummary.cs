using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Weights;
using TorchSharp;

namespace GraphCompiler.ModelDefs.Zoo;

/// <summary>A readable summary of a compiled model, like <c>print(model)</c>: blocks, parameter shapes, counts.</summary>
public static partial class ModelSummary
{
    public static string Describe(torch.nn.Module module)
    {
        var graph = module as IGraphModule;
        var shapes = WeightLoader.CheckpointShapes(module);
        var sb = new StringBuilder();
        var total = shapes.Values.Sum(Count);
        sb.Append(graph?.ModelName ?? module.GetName()).Append(" (").Append(total.ToString("N0", CultureInfo.InvariantCulture)).Append(" parameters");
        if (graph is not null)
        {
            sb.Append("; static shapes ").Append(string.Join(", ", graph.Buckets));
        }

        sb.Append(")\n");
        // Repeated layers collapse into one entry: "encoder.layer.0-11 (12×)".
        var groups = shapes.Keys
            .GroupBy(k => Block(k))
            .Select(g => (Block: g.Key, Names: g.OrderBy(n => n, StringComparer.Ordinal).ToList()))
            .ToList();
        foreach (var layerGroup in groups.GroupBy(g => LayerPattern().Replace(g.Block, ".#")))
        {
            var members = layerGroup.ToList();
            var first = members[0];
            var title = members.Count > 1
                ? $"{layerGroup.Key.Replace("#", $"0-{members.Count - 1}")} ({members.Count}×)"
                : first.Block;
            var count = members.Sum(m => m.Names.Sum(n => Count(shapes[n])));
            sb.Append("  ").Append(title).Append(": ").Append(count.ToString("N0", CultureInfo.InvariantCulture)).Append('\n');
            foreach (var name in first.Names)
            {
                sb.Append("    ").Append(name[(first.Block.Length + 1)..]).Append(" [").Append(string.Join(", ", shapes[name])).Append("]\n");
            }
        }

        return sb.ToString();
    }

    private static long Count(long[] shape) => shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>"encoder.layer.3.attention.self.query.weight" → "encoder.layer.3"; "pooler.dense.weight" → "pooler".</summary>
    private static string Block(string name)
    {
        var m = LayerPattern().Match(name);
        if (m.Success)
        {
            return name[..(m.Index + m.Length)];
        }

        var dot = name.IndexOf('.');
        return dot < 0 ? name : name[..dot];
    }

    [GeneratedRegex(@"\.\d+(?=\.|$)")]
    private static partial Regex LayerPattern();
}
