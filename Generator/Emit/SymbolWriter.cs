using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Emit
{
    /// <summary>Writes a graph as symbol JSON (format "graphcompiler-symbol", version 1; the records are
    /// GraphCompiler.Runtime.Symbol.SymbolGraph). Hand-written because the generator targets netstandard2.0 without
    /// System.Text.Json; deterministic (ids in graph order, attributes sorted ordinally, invariant culture) and one node
    /// a line, so the embedded constant diffs well.</summary>
    public static class SymbolWriter
    {
        public const string FormatName = "graphcompiler-symbol";

        public const int FormatVersion = 1;

        /// <param name="headNames">One name per graph output, or null for output0, output1, ….</param>
        public static string Write(Graph graph, string model, string precision, IEnumerable<(int Batch, int Seq)> buckets, IReadOnlyList<string>? headNames = null)
        {
            if (headNames is not null && headNames.Count != graph.Outputs.Count)
            {
                throw new ArgumentException($"graph {graph.Name} has {graph.Outputs.Count} outputs but {headNames.Count} head names were given", nameof(headNames));
            }

            var sb = new StringBuilder(256 + (160 * graph.Nodes.Count));
            sb.Append("{\n");
            sb.Append("  \"format\": ").Append(Quote(FormatName)).Append(",\n");
            sb.Append("  \"version\": ").Append(FormatVersion.ToString(CultureInfo.InvariantCulture)).Append(",\n");
            sb.Append("  \"model\": ").Append(Quote(model)).Append(",\n");
            sb.Append("  \"precision\": ").Append(Quote(precision)).Append(",\n");
            sb.Append("  \"buckets\": [")
                .Append(string.Join(", ", buckets.Select(b => "{\"batch\": " + Int(b.Batch) + ", \"seq\": " + Int(b.Seq) + "}")))
                .Append("],\n");

            // Arguments are the input nodes in call order (their order in the graph, as the forward's parameters).
            var arguments = graph.Inputs.Select(n => "{\"name\": " + Quote(n.Attr("name") ?? "") + ", \"node\": " + Int(n.Id) + "}");
            sb.Append("  \"arguments\": [").Append(string.Join(", ", arguments)).Append("],\n");

            sb.Append("  \"nodes\": [\n");
            for (var i = 0; i < graph.Nodes.Count; i++)
            {
                sb.Append("    ");
                AppendNode(sb, graph.Nodes[i]);
                sb.Append(i + 1 < graph.Nodes.Count ? ",\n" : "\n");
            }

            sb.Append("  ],\n");
            var heads = graph.Outputs.Select((id, i) => "{\"name\": " + Quote(headNames?[i] ?? "output" + Int(i)) + ", \"node\": " + Int(id) + "}");
            sb.Append("  \"heads\": [").Append(string.Join(", ", heads)).Append("]\n");
            sb.Append("}\n");
            return sb.ToString();
        }

        /// <summary>The element type's text: "f32", "f64", "i64", … (the IR's own spelling).</summary>
        public static string DType(ElementType element) => element.ToString().ToLowerInvariant();

        private static void AppendNode(StringBuilder sb, Node node)
        {
            sb.Append("{\"id\": ").Append(Int(node.Id));
            sb.Append(", \"op\": ").Append(Quote(node.Op));
            sb.Append(", \"inputs\": [").Append(string.Join(", ", node.Inputs.Select(Int))).Append(']');
            sb.Append(", \"attrs\": {");
            var first = true;
            foreach (var attr in node.Attrs.OrderBy(a => a.Key, StringComparer.Ordinal))
            {
                sb.Append(first ? "" : ", ").Append(Quote(attr.Key)).Append(": ").Append(Quote(attr.Value));
                first = false;
            }

            sb.Append('}');
            sb.Append(", \"type\": {\"dtype\": ").Append(Quote(DType(node.Type.Element)));
            sb.Append(", \"shape\": [").Append(string.Join(", ", node.Type.Shape.Select(d => Quote(d.ToString())))).Append("]}");
            sb.Append(", \"scope\": ").Append(Quote(node.Scope));
            sb.Append('}');
        }

        private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);

        /// <summary>A JSON string literal (RFC 8259): quote, backslash and control characters escaped; everything else,
        /// including non-ASCII, as is (the text is UTF-8 throughout).</summary>
        public static string Quote(string text)
        {
            var sb = new StringBuilder(text.Length + 2);
            sb.Append('"');
            foreach (var c in text)
            {
                switch (c)
                {
                    case '"':
                        sb.Append("\\\"");
                        break;
                    case '\\':
                        sb.Append("\\\\");
                        break;
                    case '\n':
                        sb.Append("\\n");
                        break;
                    case '\r':
                        sb.Append("\\r");
                        break;
                    case '\t':
                        sb.Append("\\t");
                        break;
                    case '\b':
                        sb.Append("\\b");
                        break;
                    case '\f':
                        sb.Append("\\f");
                        break;
                    default:
                        // Other controls, and the line/paragraph separators some JavaScript readers choke on, as \uXXXX.
                        if (c < 0x20 || c == '\u2028' || c == '\u2029')
                        {
                            sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        }
                        else
                        {
                            sb.Append(c);
                        }

                        break;
                }
            }

            return sb.Append('"').ToString();
        }
    }
}
