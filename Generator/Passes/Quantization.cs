using System;
using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>One GEMM the int8 variant quantizes. <paramref name="Slot"/> is the weight's name without ".weight":
    /// the key of its calibration observations and the prefix of its new scale parameters.</summary>
    public sealed record QuantizedGemm(int NodeId, int WeightId, string Slot, string Kind, string WeightName, int InFeatures, int OutFeatures);

    /// <summary>One embedding table the int8 variant stores as int8, per row. <paramref name="Slot"/> is the table's name
    /// without ".weight" and the prefix of its "&lt;slot&gt;.weight_scale" parameter.</summary>
    public sealed record QuantizedTable(int NodeId, int TableId, string Slot, string TableName, int Rows, int Width);

    /// <summary>Which GEMMs and embedding tables of an optimized graph the int8 variant quantizes (shared by
    /// <see cref="InsertObservers"/>, <see cref="QuantizeInt8"/> and the emitter, so the three always agree).</summary>
    public static class QuantizationPlan
    {
        /// <summary>Activation kinds (the Runtime's ActivationKinds values).</summary>
        public const string LayerNormOutput = "layer_norm_output";
        public const string GeluOutput = "gelu_output";
        public const string AttentionOutput = "attention_output";
        public const string Other = "other";

        /// <summary>The quantizable GEMMs by rule, in graph order: linear/linear_gelu over an f32 input with a "seq"
        /// dimension, whose weight is an f32 parameter read by that GEMM alone. GEMMs over batch rows only (pooler,
        /// classifier) cost little and decide the output, so they stay fp32; embeddings are gathers, not GEMMs.</summary>
        public static IReadOnlyList<QuantizedGemm> Candidates(Graph graph)
        {
            var byId = graph.ById();
            var uses = graph.UseCounts();
            var gemms = new List<QuantizedGemm>();
            foreach (var node in graph.Nodes)
            {
                if (node.Op is not (OpNames.Linear or OpNames.LinearGelu))
                {
                    continue;
                }

                var x = byId[node.Inputs[0]];
                var weight = byId[node.Inputs[1]];
                if (weight.Op != OpNames.Param || weight.Type.Element != ElementType.F32 || x.Type.Element != ElementType.F32
                    || !x.Type.Shape.Contains(Dim.Seq) || uses[weight.Id] != 1 || weight.Attr("name") is not { } name)
                {
                    continue;
                }

                gemms.Add(new QuantizedGemm(node.Id, weight.Id, SlotOf(name), KindOf(byId, x), name, weight.Type.Shape[1].Size, weight.Type.Shape[0].Size));
            }

            return gemms;
        }

        /// <summary>The quantizable embedding tables, in graph order: embedding(ids, table) whose table is an f32
        /// parameter read by that gather alone (a table tied to an output GEMM stays fp32). The lookup dequantizes, so
        /// the graph stays f32 after it; only storage shrinks (the word table is most of a small BERT's parameters).
        /// Position tables are read by "rows", a view of the first rows: they stay fp32 (small, and zero-copy).</summary>
        public static IReadOnlyList<QuantizedTable> TableCandidates(Graph graph)
        {
            var byId = graph.ById();
            var uses = graph.UseCounts();
            var tables = new List<QuantizedTable>();
            foreach (var node in graph.Nodes.Where(n => n.Op == OpNames.Embedding))
            {
                var table = byId[node.Inputs[1]];
                if (table.Op == OpNames.Param && table.Type.Element == ElementType.F32 && table.Type.Rank == 2 && uses[table.Id] == 1
                    && table.Attr("name") is { } name)
                {
                    tables.Add(new QuantizedTable(node.Id, table.Id, SlotOf(name), name, table.Type.Shape[0].Size, table.Type.Shape[1].Size));
                }
            }

            return tables;
        }

        /// <summary>The table candidates minus those an Exclude prefix names.</summary>
        public static IReadOnlyList<QuantizedTable> SelectTables(Graph graph, IReadOnlyCollection<string> exclude) =>
            TableCandidates(graph).Where(t => !exclude.Any(prefix => t.TableName.StartsWith(prefix, StringComparison.Ordinal))).ToList();

        private static string SlotOf(string name)
        {
            const string suffix = ".weight";
            return name.EndsWith(suffix, StringComparison.Ordinal) && name.Length > suffix.Length ? name.Substring(0, name.Length - suffix.Length) : name;
        }

        /// <summary>The candidates minus those an Exclude prefix names.</summary>
        public static IReadOnlyList<QuantizedGemm> Select(Graph graph, IReadOnlyCollection<string> exclude)
        {
            var byId = graph.ById();
            return Candidates(graph).Where(g => !exclude.Any(prefix => Matches(byId[g.WeightId], prefix))).ToList();
        }

        /// <summary>The first Exclude prefix that names no candidate GEMM or table (a typo, or a tensor that stays fp32
        /// anyway).</summary>
        public static string? UnmatchedPrefix(Graph graph, IEnumerable<string> exclude)
        {
            var byId = graph.ById();
            var candidates = Candidates(graph);
            var tables = TableCandidates(graph);
            return exclude.FirstOrDefault(prefix => !candidates.Any(g => Matches(byId[g.WeightId], prefix))
                && !tables.Any(t => t.TableName.StartsWith(prefix, StringComparison.Ordinal)));
        }

        /// <summary>A prefix matches a weight's name or, for a packed weight, any name it packs.</summary>
        public static bool Matches(Node weight, string prefix) =>
            weight.Attr("name")!.StartsWith(prefix, StringComparison.Ordinal)
            || (weight.Attr("packs")?.Split(',').Any(n => n.StartsWith(prefix, StringComparison.Ordinal)) ?? false);

        /// <summary>What produced a GEMM's input, looking through views (and inference-time identity dropout): the
        /// activation statistics differ by kind, so calibrators may treat them differently.</summary>
        private static string KindOf(Dictionary<int, Node> byId, Node x)
        {
            while (x.Op is OpNames.Reshape or OpNames.Permute or OpNames.Transpose or OpNames.Dropout or OpNames.Observe)
            {
                x = byId[x.Inputs[0]];
            }

            return x.Op switch
            {
                OpNames.LayerNorm or OpNames.AddLayerNorm => LayerNormOutput,
                OpNames.Gelu or OpNames.LinearGelu or OpNames.QLinearGelu or OpNames.QLinearGeluRequantize => GeluOutput,
                OpNames.Sdpa => AttentionOutput,
                _ => Other,
            };
        }

        /// <summary>Inserts each node of <paramref name="before"/> right before the node with that id.</summary>
        internal static Graph InsertBefore(Graph graph, IReadOnlyDictionary<int, List<Node>> before, IReadOnlyDictionary<int, Node> replacements) =>
            graph with
            {
                Nodes = graph.Nodes.SelectMany(n =>
                    (before.TryGetValue(n.Id, out var inserted) ? inserted : Enumerable.Empty<Node>())
                        .Append(replacements.TryGetValue(n.Id, out var r) ? r : n)).ToEquatableArray(),
            };
    }
}
