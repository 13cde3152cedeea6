using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>Linears that read the same input with the same in-features (attention's query, key and value) become one
    /// GEMM over a packed weight [Σout, in] and bias, then slices. The packed parameter records the names it packs
    /// ("packs"), so checkpoints with separate q/k/v tensors still load by name.</summary>
    public sealed class PackSiblingLinears : IGraphPass
    {
        public string Name => "pack_qkv";

        public Graph Run(Graph graph)
        {
            var byId = graph.ById();
            var groups = graph.Nodes
                .Where(n => n.Op == OpNames.Linear && n.Inputs.Count == 3 && IsPlainParam(byId[n.Inputs[1]]) && IsPlainParam(byId[n.Inputs[2]]))
                // Members must agree on dtypes and initializers: one packed tensor has one of each.
                .GroupBy(n => (Input: n.Inputs[0], InFeatures: byId[n.Inputs[1]].Type.Shape[1], Weight: byId[n.Inputs[1]].Type.Element, Bias: byId[n.Inputs[2]].Type.Element,
                    WeightInit: byId[n.Inputs[1]].Attr("init"), BiasInit: byId[n.Inputs[2]].Attr("init")))
                .Where(g => g.Count() >= 2)
                .ToList();
            if (groups.Count == 0)
            {
                return graph;
            }

            var nextId = graph.NextId;
            var inserted = new Dictionary<int, List<Node>>(); // before node id → new nodes
            var replacements = new Dictionary<int, Node>();
            foreach (var group in groups)
            {
                var members = group.ToList();
                var weights = members.Select(m => byId[m.Inputs[1]]).ToList();
                var biases = members.Select(m => byId[m.Inputs[2]]).ToList();
                var sizes = weights.Select(w => w.Type.Shape[0].Size).ToList();
                var total = sizes.Sum();
                var first = members[0];

                var weightName = PackedName(weights.Select(w => w.Attr("name")!).ToList());
                var biasName = PackedName(biases.Select(b => b.Attr("name")!).ToList());
                var packedWeight = new Node(nextId++, OpNames.Param, EquatableArray<int>.Empty, TensorType.Of(weights[0].Type.Element, Dim.Of(total), group.Key.InFeatures),
                    Attrs(("init", group.Key.WeightInit ?? "normal"), ("name", weightName), ("packs", string.Join(",", weights.Select(w => w.Attr("name")))), ("sizes", "[" + string.Join(",", sizes) + "]")),
                    weights[0].Scope, weights[0].Source);
                var packedBias = new Node(nextId++, OpNames.Param, EquatableArray<int>.Empty, TensorType.Of(biases[0].Type.Element, Dim.Of(total)),
                    Attrs(("init", group.Key.BiasInit ?? "zeros"), ("name", biasName), ("packs", string.Join(",", biases.Select(b => b.Attr("name")))), ("sizes", "[" + string.Join(",", sizes) + "]")),
                    biases[0].Scope, biases[0].Source);
                var xType = byId[group.Key.Input].Type;
                var packedType = new TensorType(xType.Element, xType.Shape.Take(xType.Rank - 1).Append(Dim.Of(total)).ToEquatableArray());
                var commonScope = CommonPrefix(members.Select(m => m.Scope).ToList());
                var packed = new Node(nextId++, OpNames.Linear, EquatableArray.Of(group.Key.Input, packedWeight.Id, packedBias.Id), packedType, EquatableArray<Attr>.Empty, commonScope, first.Source);
                inserted[first.Id] = new List<Node> { packedWeight, packedBias, packed };

                var offset = 0;
                for (var i = 0; i < members.Count; i++)
                {
                    replacements[members[i].Id] = members[i] with
                    {
                        Op = OpNames.Slice,
                        Inputs = EquatableArray.Of(packed.Id),
                        Attrs = new[] { Attr.Int("dim", -1), Attr.Int("end", offset + sizes[i]), Attr.Int("start", offset) }.ToEquatableArray(),
                    };
                    offset += sizes[i];
                }
            }

            var nodes = new List<Node>();
            foreach (var node in graph.Nodes)
            {
                if (inserted.TryGetValue(node.Id, out var before))
                {
                    nodes.AddRange(before);
                }

                nodes.Add(replacements.TryGetValue(node.Id, out var r) ? r : node);
            }

            return graph with { Nodes = nodes.ToEquatableArray() };
        }

        private static bool IsPlainParam(Node node) => node.Op == OpNames.Param && node.Attr("packs") is null;

        private static EquatableArray<Attr> Attrs(params (string Key, string Value)[] items) =>
            items.Select(i => i.Value.StartsWith("[", StringComparison.Ordinal) ? new Attr(i.Key, i.Value) : Attr.Str(i.Key, i.Value)).OrderBy(a => a.Key, StringComparer.Ordinal).ToEquatableArray();

        /// <summary>["a.self.query.weight", "a.self.key.weight"] → "a.self.query_key.weight".</summary>
        internal static string PackedName(IReadOnlyList<string> names)
        {
            var split = names.Select(n => n.Split('.')).ToList();
            var last = split[0][split[0].Length - 1];
            var prefixLength = 0;
            while (split.All(s => s.Length > prefixLength + 2) && split.All(s => s[prefixLength] == split[0][prefixLength]))
            {
                prefixLength++;
            }

            var middles = split.Select(s => string.Join("_", s.Skip(prefixLength).Take(s.Length - prefixLength - 1)));
            var prefix = string.Join(".", split[0].Take(prefixLength));
            return (prefix.Length > 0 ? prefix + "." : "") + string.Join("_", middles) + "." + last;
        }

        private static string CommonPrefix(IReadOnlyList<string> scopes)
        {
            var parts = scopes.Select(s => s.Split('.')).ToList();
            var n = 0;
            while (parts.All(p => p.Length > n) && parts.All(p => p[n] == parts[0][n]))
            {
                n++;
            }

            var prefix = string.Join(".", parts[0].Take(n));
            if (n == parts[0].Length)
            {
                return prefix;
            }

            // Siblings with no common scope ("start", "end") get "qkv", not ".qkv".
            return prefix.Length > 0 ? prefix + ".qkv" : "qkv";
        }
    }
}
