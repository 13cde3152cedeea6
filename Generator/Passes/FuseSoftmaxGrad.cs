using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>scale(softmax_grad(mul(dy, gate), y), s) → gated_softmax_grad(dy, y, gate) {scale=s}, and without the
    /// scale {scale=1}: attention's backward multiplies by the dropout mask, differentiates the softmax and applies the
    /// score scale, three passes over the [batch, heads, seq, seq] scores that one kernel does in one. The mul must be
    /// element-wise (both operands the softmax's shape) and used only there; so must the softmax_grad under a scale.</summary>
    public sealed class FuseSoftmaxGrad : IGraphPass
    {
        public string Name => "fuse_softmax_grad";

        public Graph Run(Graph graph)
        {
            var byId = graph.ById();
            var uses = graph.UseCounts();
            var replacements = new Dictionary<int, Node>();
            var absorbed = new HashSet<int>();
            // Latest first, so a scale is seen before the softmax_grad under it.
            foreach (var node in graph.Nodes.Reverse())
            {
                var (grad, scale) = node.Op == OpNames.Scale && byId[node.Inputs[0]].Op == OpNames.SoftmaxGrad && Rewrite.SingleUse(uses, graph, node.Inputs[0])
                    ? (byId[node.Inputs[0]], node.Float("factor"))
                    : node.Op == OpNames.SoftmaxGrad ? (node, 1.0) : (null, 0);
                if (grad is null || absorbed.Contains(grad.Id))
                {
                    continue;
                }

                var mul = byId[grad.Inputs[0]];
                if (mul.Op != OpNames.Mul || !Rewrite.SingleUse(uses, graph, mul.Id) ||
                    !byId[mul.Inputs[0]].Type.Equals(grad.Type) || !byId[mul.Inputs[1]].Type.Equals(grad.Type))
                {
                    continue;
                }

                absorbed.Add(grad.Id);
                replacements[node.Id] = node with
                {
                    Op = OpNames.GatedSoftmaxGrad,
                    Inputs = new[] { mul.Inputs[0], grad.Inputs[1], mul.Inputs[1] }.ToEquatableArray(),
                    Attrs = new[] { Attr.Float("scale", scale) }.ToEquatableArray(),
                    Scope = grad.Scope,
                };
            }

            return Rewrite.Replace(graph, replacements);
        }
    }
}
