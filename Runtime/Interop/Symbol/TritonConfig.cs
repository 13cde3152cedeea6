using System.Globalization;
using System.Text;

namespace GraphCompiler.Runtime.Symbol;

/// <summary>How the Triton model repository is written.</summary>
public sealed record TritonOptions
{
    /// <summary>The model's name in the repository (default: the symbol graph's model name).</summary>
    public string? Name { get; init; }

    /// <summary>The model version folder.</summary>
    public int Version { get; init; } = 1;

    /// <summary>How long Triton's dynamic batcher waits to fill a batch (as <c>predict serve --max-batch-delay-ms</c>).</summary>
    public int MaxQueueDelayMicroseconds { get; init; } = 2000;
}

/// <summary>Triton Inference Server's <c>config.pbtxt</c> (protobuf text of <c>inference.ModelConfig</c>) for the ONNX
/// export of a symbol graph: the onnxruntime backend, inputs and outputs with their types and non-batch dims (a
/// symbolic "seq" is -1), max_batch_size the largest declared batch, and dynamic batching preferring the declared batch
/// sizes. Triton batches only requests whose non-batch dims agree, so clients pad to a declared sequence length (listed
/// in the header comment), as the buckets intend.</summary>
public static class TritonConfig
{
    public static string Write(SymbolGraph graph, TritonOptions? options = null)
    {
        options ??= new TritonOptions();
        var nodes = graph.Nodes.ToDictionary(n => n.Id);
        var inputs = graph.Arguments.Select(a => (a.Name, nodes[a.Node].Type)).ToList();
        var outputs = graph.Heads.Select(h => (h.Name, nodes[h.Node].Type)).ToList();
        foreach (var (name, type) in inputs.Concat(outputs))
        {
            if (type.Shape.Count == 0 || type.Shape[0] != "batch")
            {
                throw new ArgumentException($"model '{graph.Model}': tensor '{name}' has shape [{string.Join(", ", type.Shape)}]; a Triton batching config needs the batch first", nameof(graph));
            }
        }

        var batches = graph.Buckets.Select(b => b.Batch).Distinct().Order().ToList();
        var seqs = graph.Buckets.Select(b => b.Seq).Distinct().Order().ToList();
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"# Triton model configuration for '{graph.Model}' ({graph.Precision}), written by GraphCompiler's ModelExport.ExportTriton.");
        text.AppendLine(CultureInfo.InvariantCulture, $"# Declared static buckets (batch x seq): {string.Join(", ", graph.Buckets.Select(b => $"{b.Batch}x{b.Seq}"))}.");
        text.AppendLine(CultureInfo.InvariantCulture, $"# Pad each request's sequence to one of {string.Join(", ", seqs)} tokens: the dynamic batcher joins only equal shapes.");
        text.AppendLine(CultureInfo.InvariantCulture, $"name: \"{options.Name ?? graph.Model}\"");
        text.AppendLine("platform: \"onnxruntime_onnx\"");
        text.AppendLine(CultureInfo.InvariantCulture, $"max_batch_size: {batches[^1]}");
        Tensors(text, "input [", inputs); // the pbtxt list's opening line
        Tensors(text, "output [", outputs);
        text.AppendLine("dynamic_batching {");
        text.AppendLine(CultureInfo.InvariantCulture, $"  preferred_batch_size: [ {string.Join(", ", batches)} ]");
        text.AppendLine(CultureInfo.InvariantCulture, $"  max_queue_delay_microseconds: {options.MaxQueueDelayMicroseconds}");
        text.AppendLine("}");
        text.AppendLine(CultureInfo.InvariantCulture, $"version_policy: {{ specific: {{ versions: [ {options.Version} ] }} }}");
        return text.ToString();
    }

    private static void Tensors(StringBuilder text, string opening, IReadOnlyList<(string Name, SymbolType Type)> tensors)
    {
        text.AppendLine(opening);
        for (var i = 0; i < tensors.Count; i++)
        {
            var (name, type) = tensors[i];
            var dims = type.Shape.Skip(1).Select(d => d == "seq" ? "-1" : long.Parse(d, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture)).ToList();
            text.AppendLine("  {");
            text.AppendLine(CultureInfo.InvariantCulture, $"    name: \"{name}\"");
            text.AppendLine(CultureInfo.InvariantCulture, $"    data_type: {DataType(type.DType, name)}");
            if (dims.Count == 0)
            {
                // A tensor of shape [batch]: Triton wants at least one dim besides the batch, so [1] reshaped to [].
                text.AppendLine("    dims: [ 1 ]");
                text.AppendLine("    reshape: { shape: [ ] }");
            }
            else
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"    dims: [ {string.Join(", ", dims)} ]");
            }

            text.AppendLine(i == tensors.Count - 1 ? "  }" : "  },");
        }

        text.AppendLine("]");
    }

    private static string DataType(string dtype, string name) => dtype switch
    {
        "f32" => "TYPE_FP32",
        "f64" => "TYPE_FP64",
        "i64" => "TYPE_INT64",
        "i32" => "TYPE_INT32",
        "i8" => "TYPE_INT8",
        _ => throw new ArgumentException($"tensor '{name}': dtype '{dtype}' has no Triton type here"),
    };
}
