using System;
using System.Collections.Generic;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>matmul(dropout?(masked_softmax(scale(matmul(q, kᵀ)), mask)), v) → sdpa(q, k, v, mask): libtorch's
    /// scaled_dot_product_attention (a fused, memory-efficient kernel) instead of five ops and a [b,h,s,s] tensor
    /// per step. Only the default scale 1/√d is fused, since SDPA here takes no scale argument.</summary>
    public sealed class FuseAttention : IGraphPass
    {
        public string Name => "fuse_attention";

        public Graph Run(Graph graph)
        {
            var byId = graph.ById();
            var uses = graph.UseCounts();
            var replacements = new Dictionary<int, Node>();
            foreach (var output in graph.Nodes)
            {
                if (output.Op != OpNames.MatMul || output.Flag("transB"))
                {
                    continue;
                }

                var probs = byId[output.Inputs[0]];
                var dropout = 0.0;
                if (probs.Op == OpNames.Dropout && Rewrite.SingleUse(uses, graph, probs.Id))
                {
                    dropout = probs.Float("p");
                    probs = byId[probs.Inputs[0]];
                }

                if (probs.Op != OpNames.MaskedSoftmax || !Rewrite.SingleUse(uses, graph, probs.Id))
                {
                    continue;
                }

                var scaled = byId[probs.Inputs[0]];
                if (scaled.Op != OpNames.Scale || !Rewrite.SingleUse(uses, graph, scaled.Id))
                {
                    continue;
                }

                var scores = byId[scaled.Inputs[0]];
                if (scores.Op != OpNames.MatMul || !scores.Flag("transB") || !Rewrite.SingleUse(uses, graph, scores.Id))
                {
                    continue;
                }

                var q = byId[scores.Inputs[0]];
                var k = byId[scores.Inputs[1]];
                var v = byId[output.Inputs[1]];
                if (q.Type.Rank != 4 || q.Type.Shape != k.Type.Shape || k.Type.Shape != v.Type.Shape || !q.Type.Last.IsConstant)
                {
                    continue;
                }

                var expected = 1 / Math.Sqrt(q.Type.Last.Size);
                if (Math.Abs(scaled.Float("factor") - expected) > 1e-12 * expected)
                {
                    continue;
                }

                replacements[output.Id] = output with
                {
                    Op = OpNames.Sdpa,
                    Inputs = EquatableArray.Of(q.Id, k.Id, v.Id, probs.Inputs[1]),
                    Attrs = new[] { Attr.Float("dropout", dropout) }.ToEquatableArray(),
                };
            }

            return Rewrite.Replace(graph, replacements);
        }
    }
}
