using System.Globalization;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Symbol;

/// <summary>The text forms of symbol types: dtype names ↔ TorchSharp scalar types, and dims ("batch", "seq" or a
/// non-negative integer) resolved in a bucket.</summary>
public static class SymbolTypes
{
    public const string Batch = "batch";

    public const string Seq = "seq";

    private static readonly Dictionary<string, ScalarType> DTypes = new(StringComparer.Ordinal)
    {
        ["f32"] = ScalarType.Float32,
        ["f64"] = ScalarType.Float64,
        ["f16"] = ScalarType.Float16,
        ["bf16"] = ScalarType.BFloat16,
        ["i64"] = ScalarType.Int64,
        ["i32"] = ScalarType.Int32,
        ["i16"] = ScalarType.Int16,
        ["i8"] = ScalarType.Int8,
        ["u8"] = ScalarType.Byte,
        ["bool"] = ScalarType.Bool,
    };

    public static IReadOnlyCollection<string> DTypeNames => DTypes.Keys;

    public static bool TryScalarType(string dtype, out ScalarType type) => DTypes.TryGetValue(dtype, out type);

    public static ScalarType ToScalarType(string dtype) =>
        DTypes.TryGetValue(dtype, out var type) ? type : throw new ArgumentException($"unknown dtype '{dtype}' (known: {string.Join(", ", DTypes.Keys)})", nameof(dtype));

    /// <summary>The dtype text of a scalar type ("f32", "i8", …).</summary>
    public static string DType(ScalarType type) =>
        DTypes.FirstOrDefault(kv => kv.Value == type).Key ?? throw new ArgumentException($"scalar type {type} has no symbol dtype", nameof(type));

    /// <summary>True for "batch", "seq" and non-negative integers.</summary>
    public static bool IsDim(string text) => text is Batch or Seq || TryConstant(text, out _);

    public static bool TryConstant(string text, out long size) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out size);

    /// <summary>True for "batch", "seq" and any integer: attribute dim lists may hold -1 (reshape infers it).</summary>
    public static bool IsAttributeDim(string text) =>
        text is Batch or Seq || long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _);

    /// <summary>A dim's size in a bucket.</summary>
    public static long Resolve(string dim, long batch, long seq) => dim switch
    {
        Batch => batch,
        Seq => seq,
        _ => long.TryParse(dim, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new ArgumentException($"'{dim}' is not a dimension (batch, seq or an integer)", nameof(dim)),
    };

    public static long[] Resolve(IEnumerable<string> dims, long batch, long seq) => dims.Select(d => Resolve(d, batch, seq)).ToArray();

    /// <summary>"f32[batch,seq,384]", the IR's spelling, for messages.</summary>
    public static string Describe(SymbolType type) => type.DType + "[" + string.Join(",", type.Shape) + "]";

    /// <summary>"node 12 (linear, scope 'encoder.layer.0')" or "node 3 (param 'pooler.dense.weight')", for messages.</summary>
    public static string Describe(SymbolNode node)
    {
        var id = "node " + node.Id.ToString(CultureInfo.InvariantCulture);
        if (node.Op is Registry.OpNames.Param or Registry.OpNames.Input && node.Attrs.TryGetValue("name", out var name))
        {
            return $"{id} ({node.Op} '{name}')";
        }

        return string.IsNullOrEmpty(node.Scope) ? $"{id} ({node.Op})" : $"{id} ({node.Op}, scope '{node.Scope}')";
    }
}
