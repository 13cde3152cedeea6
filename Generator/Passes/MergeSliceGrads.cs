using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>add(…add(slice_grad(a), slice_grad(b))…, slice_grad(c)) → concat(a, b, c) when the slices tile their
    /// dimension exactly (start 0, no gaps, no overlap). Autodiff gives every slice of one value (the packed QKV GEMM's
    /// output) its own zero-filled full-size gradient and sums them; the concat writes each part once. Every add and
    /// slice_grad of the chain must be used only there.</summary>
    public sealed class MergeSliceGrads : IGraphPass
    {
        public string Name => "merge_slice_grads";

        public Graph Run(Graph graph)
        {
            var byId = graph.ById();
            var uses = graph.UseCounts();
            var replacements = new Dictionary<int, Node>();
            var absorbed = new HashSet<int>();
            // Latest first, so a chain's root is seen before the adds inside it.
            foreach (var root in graph.Nodes.Reverse())
            {
                if (root.Op != OpNames.Add || absorbed.Contains(root.Id))
                {
                    continue;
                }

                var leaves = new List<Node>();
                var inner = new List<int>();
                if (!Collect(root, isRoot: true, byId, uses, graph, leaves, inner) || leaves.Count < 2)
                {
                    continue;
                }

                var parts = Tiling(leaves, byId);
                if (parts is null)
                {
                    continue;
                }

                absorbed.UnionWith(inner);
                replacements[root.Id] = root with
                {
                    Op = OpNames.Concat,
                    Inputs = parts.ToEquatableArray(),
                    Attrs = new[] { Attr.Int("dim", leaves[0].Int("dim")) }.ToEquatableArray(),
                };
            }

            return Rewrite.Replace(graph, replacements);
        }

        /// <summary>The slice_grad leaves under an add chain; false when any leaf is something else or any inner node
        /// has another use.</summary>
        private static bool Collect(Node node, bool isRoot, Dictionary<int, Node> byId, Dictionary<int, int> uses, Graph graph, List<Node> leaves, List<int> inner)
        {
            if (!isRoot && !Rewrite.SingleUse(uses, graph, node.Id))
            {
                return false;
            }

            if (node.Op == OpNames.SliceGrad)
            {
                leaves.Add(node);
                return true;
            }

            if (node.Op != OpNames.Add || !node.Type.Equals(byId[node.Inputs[0]].Type) || !node.Type.Equals(byId[node.Inputs[1]].Type))
            {
                return false;
            }

            if (!isRoot)
            {
                inner.Add(node.Id);
            }

            return node.Inputs.All(input => Collect(byId[input], isRoot: false, byId, uses, graph, leaves, inner));
        }

        /// <summary>The leaves' gradients ordered by start when they cover [0, size) of one dimension exactly.</summary>
        private static List<int>? Tiling(List<Node> leaves, Dictionary<int, Node> byId)
        {
            var dim = leaves[0].Int("dim");
            if (leaves.Any(l => l.Int("dim") != dim))
            {
                return null;
            }

            var next = 0L;
            var parts = new List<int>();
            foreach (var leaf in leaves.OrderBy(l => l.Int("start")))
            {
                var width = byId[leaf.Inputs[0]].Type.Shape[(int)dim];
                if (leaf.Int("start") != next || !width.IsConstant)
                {
                    return null;
                }

                next += width.Size;
                parts.Add(leaf.Inputs[0]);
            }

            var full = leaves[0].Type.Shape[(int)dim];
            return full.IsConstant && full.Size == next ? parts : null;
        }
    }
}
