using System.Text.Json.Serialization;

namespace GraphCompiler.Runtime.Symbol;

// The graph as data (prefix-symbol.json), as MXNet's symbol.json is for a SymbolBlock: every node with its op, name,
// attributes (canonical IR text, as MXNet keeps attributes as strings), inputs by node id and result type; the model's
// arguments and heads. Written by the generator at build time (each module's SymbolJson), read by SymbolBlock and the
// ONNX exporter. Parameters are "param" nodes whose "name" attribute is the tensor's name in prefix-0000.params.

/// <summary>A whole model graph. <see cref="Version"/> is <see cref="SymbolGraph.FormatVersion"/>.</summary>
public sealed record SymbolGraph(
    [property: JsonPropertyName("format")] string Format,
    [property: JsonPropertyName("version")] int Version,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("precision")] string Precision,
    [property: JsonPropertyName("buckets")] IReadOnlyList<SymbolBucket> Buckets,
    [property: JsonPropertyName("arguments")] IReadOnlyList<SymbolArgument> Arguments,
    [property: JsonPropertyName("nodes")] IReadOnlyList<SymbolNode> Nodes,
    [property: JsonPropertyName("heads")] IReadOnlyList<SymbolHead> Heads)
{
    public const string FormatName = "graphcompiler-symbol";

    public const int FormatVersion = 1;
}

/// <summary>A static shape the graph was compiled for; "batch" and "seq" dims resolve to these.</summary>
public sealed record SymbolBucket(
    [property: JsonPropertyName("batch")] int Batch,
    [property: JsonPropertyName("seq")] int Seq);

/// <summary>A model input (an "input" node), in call order.</summary>
public sealed record SymbolArgument(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("node")] int Node);

/// <summary>One operation. Inputs are ids of earlier nodes; attributes hold the IR's canonical text
/// (e.g. "true", "1E-12", "[0,2,1,3]", "[batch,seq,12,32]").</summary>
public sealed record SymbolNode(
    [property: JsonPropertyName("id")] int Id,
    [property: JsonPropertyName("op")] string Op,
    [property: JsonPropertyName("inputs")] IReadOnlyList<int> Inputs,
    [property: JsonPropertyName("attrs")] IReadOnlyDictionary<string, string> Attrs,
    [property: JsonPropertyName("type")] SymbolType Type,
    [property: JsonPropertyName("scope")] string? Scope = null);

/// <summary>Element type ("f32", "f64", "i64", "i8", "i32") and dims ("batch", "seq" or a number as text).</summary>
public sealed record SymbolType(
    [property: JsonPropertyName("dtype")] string DType,
    [property: JsonPropertyName("shape")] IReadOnlyList<string> Shape);

/// <summary>A model output.</summary>
public sealed record SymbolHead(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("node")] int Node);
