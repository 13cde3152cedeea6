using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;

namespace GraphCompiler.Generator.Ir
{
    /// <summary>The canonical text form of the IR, one node a line; <see cref="Parse"/> reads it back (pass tests
    /// write their "before" graphs in it).</summary>
    /// <example>
    /// graph tiny
    ///   %0 = input {name="x"} : f32[batch,seq,16]
    ///   %1 = param {init="normal", name="fc.weight"} : f32[8,16]
    ///   %2 = matmul(%0, %1) {transB=true} : f32[batch,seq,8]  # fc @ Tiny.cs:12
    ///   return %2
    /// </example>
    public static class IrText
    {
        public static string Print(Graph graph)
        {
            var sb = new StringBuilder();
            sb.Append("graph ").Append(graph.Name).Append('\n');
            foreach (var node in graph.Nodes)
            {
                sb.Append("  ").Append(PrintNode(node)).Append('\n');
            }

            sb.Append("  return ").Append(string.Join(", ", graph.Outputs.Select(o => "%" + o.ToString(CultureInfo.InvariantCulture)))).Append('\n');
            return sb.ToString();
        }

        public static string PrintNode(Node node)
        {
            var sb = new StringBuilder();
            sb.Append('%').Append(node.Id.ToString(CultureInfo.InvariantCulture)).Append(" = ").Append(node.Op);
            if (node.Inputs.Count > 0)
            {
                sb.Append('(').Append(string.Join(", ", node.Inputs.Select(i => "%" + i.ToString(CultureInfo.InvariantCulture)))).Append(')');
            }

            if (node.Attrs.Count > 0)
            {
                sb.Append(" {").Append(string.Join(", ", node.Attrs.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => a.ToString()))).Append('}');
            }

            sb.Append(" : ").Append(node.Type);
            if (node.Scope.Length > 0 || node.Source.Length > 0)
            {
                sb.Append("  #");
                if (node.Scope.Length > 0)
                {
                    sb.Append(' ').Append(node.Scope);
                }

                if (node.Source.Length > 0)
                {
                    sb.Append(" @ ").Append(node.Source);
                }
            }

            return sb.ToString();
        }

        private static readonly Regex NodeLine = new(
            @"^%(?<id>\d+) = (?<op>[a-z_0-9]+)(\((?<inputs>[^)]*)\))?( \{(?<attrs>.*)\})? : (?<type>[a-z0-9]+\[[^\]]*\])(  #( (?<scope>[^@]*?))?( @ (?<source>.*))?)?$",
            RegexOptions.CultureInvariant);

        private static readonly Regex AttrItem = new(@"(?<key>[A-Za-z_0-9]+)=(""(?<str>[^""]*)""|(?<raw>\[[^\]]*\]|[^,\s]+))", RegexOptions.CultureInvariant);

        public static Graph Parse(string text)
        {
            var lines = text.Replace("\r", "").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            if (lines.Count == 0 || !lines[0].StartsWith("graph ", StringComparison.Ordinal))
            {
                throw new FormatException("IR text must start with 'graph NAME'");
            }

            var nodes = new List<Node>();
            var outputs = new List<int>();
            for (var i = 1; i < lines.Count; i++)
            {
                var line = lines[i];
                if (line.StartsWith("return", StringComparison.Ordinal))
                {
                    outputs.AddRange(line.Substring(6).Split(',').Select(s => s.Trim()).Where(s => s.Length > 0).Select(ParseRef));
                    continue;
                }

                var m = NodeLine.Match(line);
                if (!m.Success)
                {
                    throw new FormatException($"line {i + 1}: cannot read IR node '{line}'");
                }

                var inputs = m.Groups["inputs"].Success && m.Groups["inputs"].Value.Trim().Length > 0
                    ? m.Groups["inputs"].Value.Split(',').Select(s => ParseRef(s.Trim())).ToList()
                    : new List<int>();
                var attrs = new List<Attr>();
                foreach (Match a in AttrItem.Matches(m.Groups["attrs"].Value))
                {
                    attrs.Add(a.Groups["str"].Success ? Attr.Str(a.Groups["key"].Value, a.Groups["str"].Value) : new Attr(a.Groups["key"].Value, a.Groups["raw"].Value));
                }

                nodes.Add(new Node(
                    int.Parse(m.Groups["id"].Value, CultureInfo.InvariantCulture),
                    m.Groups["op"].Value,
                    inputs.ToEquatableArray(),
                    ParseType(m.Groups["type"].Value),
                    attrs.OrderBy(a => a.Key, StringComparer.Ordinal).ToEquatableArray(),
                    m.Groups["scope"].Success ? m.Groups["scope"].Value.Trim() : "",
                    m.Groups["source"].Success ? m.Groups["source"].Value.Trim() : ""));
            }

            return new Graph(lines[0].Substring(6).Trim(), nodes.ToEquatableArray(), outputs.ToEquatableArray());
        }

        private static int ParseRef(string s) => int.Parse(s.TrimStart('%'), CultureInfo.InvariantCulture);

        public static TensorType ParseType(string text)
        {
            var open = text.IndexOf('[');
            var element = (ElementType)Enum.Parse(typeof(ElementType), text.Substring(0, open), ignoreCase: true);
            var body = text.Substring(open + 1, text.Length - open - 2);
            var dims = body.Length == 0
                ? new List<Dim>()
                : body.Split(',').Select(d => int.TryParse(d, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? Dim.Of(n) : Dim.Sym(d)).ToList();
            return new TensorType(element, dims.ToEquatableArray());
        }
    }
}
