using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace GraphCompiler.Generator.Ir
{
    public enum ElementType
    {
        F32,
        F64,
        I64,
        /// <summary>int8 GEMM weights (the int8 variant's quantized parameters).</summary>
        I8,
    }

    /// <summary>A dimension: a constant size, or a symbol of the static shape bucket ("batch", "seq").</summary>
    public readonly record struct Dim(int Size, string? Symbol)
    {
        public static Dim Of(int size) => new(size, null);

        public static Dim Sym(string symbol) => new(0, symbol);

        public static readonly Dim Batch = Sym("batch");

        public static readonly Dim Seq = Sym("seq");

        public bool IsConstant => Symbol is null;

        public override string ToString() => Symbol ?? Size.ToString(CultureInfo.InvariantCulture);
    }

    public sealed record TensorType(ElementType Element, EquatableArray<Dim> Shape)
    {
        public static TensorType Of(ElementType element, params Dim[] dims) => new(element, dims.ToEquatableArray());

        public int Rank => Shape.Count;

        public Dim Last => Shape[Shape.Count - 1];

        public override string ToString() =>
            Element.ToString().ToLowerInvariant() + "[" + string.Join(",", Shape.Select(d => d.ToString())) + "]";
    }

    /// <summary>An attribute value in canonical text form (invariant, round-trippable), so nodes compare by value.</summary>
    public sealed record Attr(string Key, string Value, bool Quoted = false)
    {
        public static Attr Int(string key, long value) => new(key, value.ToString(CultureInfo.InvariantCulture));

        public static Attr Float(string key, double value) => new(key, value.ToString("R", CultureInfo.InvariantCulture));

        public static Attr Ints(string key, IEnumerable<long> values) =>
            new(key, "[" + string.Join(",", values.Select(v => v.ToString(CultureInfo.InvariantCulture))) + "]");

        public static Attr Dims(string key, IEnumerable<Dim> dims) => new(key, "[" + string.Join(",", dims.Select(d => d.ToString())) + "]");

        public static Attr Str(string key, string value) => new(key, value, Quoted: true);

        public static Attr Bool(string key, bool value) => new(key, value ? "true" : "false");

        public override string ToString() => Key + "=" + (Quoted ? "\"" + Value + "\"" : Value);
    }

    /// <summary>One op application. <paramref name="Id"/> names its single result (%Id in the text form);
    /// <paramref name="Scope"/> is the parameter prefix it was declared under; <paramref name="Source"/> "File.cs:line".</summary>
    public sealed record Node(int Id, string Op, EquatableArray<int> Inputs, TensorType Type, EquatableArray<Attr> Attrs, string Scope, string Source)
    {
        public string? Attr(string key) => Attrs.FirstOrDefault(a => a.Key == key)?.Value;

        public long Int(string key) => long.Parse(Attr(key) ?? throw new InvalidOperationException($"%{Id} {Op} has no attribute '{key}'"), CultureInfo.InvariantCulture);

        public double Float(string key) => double.Parse(Attr(key) ?? throw new InvalidOperationException($"%{Id} {Op} has no attribute '{key}'"), CultureInfo.InvariantCulture);

        public bool Flag(string key) => Attr(key) == "true";

        public IReadOnlyList<long> Ints(string key) => ParseList(Attr(key)).Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToList();

        public IReadOnlyList<Dim> DimList(string key) =>
            ParseList(Attr(key)).Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) ? Dim.Of(i) : Dim.Sym(s)).ToList();

        public Node WithAttr(Attr attr) => this with { Attrs = Attrs.Where(a => a.Key != attr.Key).Append(attr).OrderBy(a => a.Key, StringComparer.Ordinal).ToEquatableArray() };

        private static IEnumerable<string> ParseList(string? text) =>
            string.IsNullOrEmpty(text) || text == "[]" ? Enumerable.Empty<string>() : text!.Trim('[', ']').Split(',');
    }

    /// <summary>A model's computation: nodes in topological order (inputs and parameters are nodes too).</summary>
    public sealed record Graph(string Name, EquatableArray<Node> Nodes, EquatableArray<int> Outputs)
    {
        public Node this[int id] => Nodes.First(n => n.Id == id);

        public IEnumerable<Node> Inputs => Nodes.Where(n => n.Op == OpNames.Input);

        public IEnumerable<Node> Parameters => Nodes.Where(n => n.Op == OpNames.Param);

        public Dictionary<int, Node> ById() => Nodes.ToDictionary(n => n.Id);

        /// <summary>How many nodes (and graph outputs) read each value.</summary>
        public Dictionary<int, int> UseCounts()
        {
            var uses = Nodes.ToDictionary(n => n.Id, _ => 0);
            foreach (var node in Nodes)
            {
                foreach (var input in node.Inputs)
                {
                    uses[input]++;
                }
            }

            foreach (var output in Outputs)
            {
                uses[output]++;
            }

            return uses;
        }

        public int NextId => Nodes.Count == 0 ? 0 : Nodes.Max(n => n.Id) + 1;
    }
}
