using System;
using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>The int8 variant: linear/linear_gelu with a parameter weight → qlinear/qlinear_gelu. The weight keeps
    /// its name but becomes i8 (per-channel symmetric); each GEMM gets two new parameters, "&lt;slot&gt;.weight_scale"
    /// f32[N] and "&lt;slot&gt;.input_scale" f32[] (the calibrated per-tensor activation scale). Which GEMMs:
    /// <see cref="QuantizationPlan"/>. Embedding tables likewise: embedding(ids, table) → qembedding(ids, table,
    /// table_scale) with the table i8 under its name and "&lt;slot&gt;.weight_scale" f32[V], one scale per row. Runs after
    /// the default pipeline.</summary>
    public sealed class QuantizeInt8 : IGraphPass
    {
        private readonly IReadOnlyCollection<string> _exclude;

        public QuantizeInt8(IReadOnlyCollection<string>? exclude = null) => _exclude = exclude ?? new string[0];

        public string Name => "quantize_int8";

        public Graph Run(Graph graph)
        {
            var byId = graph.ById();
            var names = new HashSet<string>(graph.Parameters.Select(p => p.Attr("name")!), StringComparer.Ordinal);
            var next = graph.NextId;
            var inserted = new Dictionary<int, List<Node>>();
            var replacements = new Dictionary<int, Node>();
            Node NewParam(Node node, Node weight, string slot, string suffix, params Dim[] dims)
            {
                var name = slot + suffix;
                if (!names.Add(name))
                {
                    throw new InvalidOperationException($"quantize_int8: %{node.Id} ({weight.Attr("name")}) needs a parameter '{name}', but the model already has one");
                }

                return new Node(next++, OpNames.Param, EquatableArray<int>.Empty, TensorType.Of(ElementType.F32, dims),
                    new[] { Attr.Str("init", "ones"), Attr.Str("name", name) }.ToEquatableArray(), weight.Scope, weight.Source);
            }

            foreach (var gemm in QuantizationPlan.Select(graph, _exclude))
            {
                var node = byId[gemm.NodeId];
                var weight = byId[gemm.WeightId];
                var weightScale = NewParam(node, weight, gemm.Slot, ".weight_scale", weight.Type.Shape[0]);
                var inputScale = NewParam(node, weight, gemm.Slot, ".input_scale");
                inserted[node.Id] = new List<Node> { weightScale, inputScale };
                replacements[weight.Id] = weight with { Type = weight.Type with { Element = ElementType.I8 } };
                var inputs = new List<int> { node.Inputs[0], weight.Id, weightScale.Id, inputScale.Id };
                inputs.AddRange(node.Inputs.Skip(2));
                replacements[node.Id] = node with
                {
                    Op = node.Op == OpNames.LinearGelu ? OpNames.QLinearGelu : OpNames.QLinear,
                    Inputs = inputs.ToEquatableArray(),
                };
            }

            // Tables after the GEMMs, so the GEMM scales keep the ids they had before tables were quantized.
            foreach (var table in QuantizationPlan.SelectTables(graph, _exclude))
            {
                var (node, values) = (byId[table.NodeId], byId[table.TableId]);
                var scale = NewParam(node, values, table.Slot, ".weight_scale", values.Type.Shape[0]);
                inserted[node.Id] = new List<Node> { scale };
                replacements[values.Id] = values with { Type = values.Type with { Element = ElementType.I8 } };
                replacements[node.Id] = node with
                {
                    Op = OpNames.QEmbedding,
                    Inputs = new[] { node.Inputs[0], values.Id, scale.Id }.ToEquatableArray(),
                };
            }

            return inserted.Count == 0 ? graph : QuantizationPlan.InsertBefore(graph, inserted, replacements);
        }
    }
}
