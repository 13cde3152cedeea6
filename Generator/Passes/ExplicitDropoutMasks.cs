using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>Training graphs only: dropout(x) → mul(x, dropout_mask(x)). The mask becomes a value the forward saves,
    /// so the backward applies exactly the mask the forward drew.</summary>
    public sealed class ExplicitDropoutMasks : IGraphPass
    {
        public string Name => "explicit_dropout_masks";

        public Graph Run(Graph graph)
        {
            var next = graph.NextId;
            var nodes = new List<Node>();
            foreach (var node in graph.Nodes)
            {
                if (node.Op != OpNames.Dropout)
                {
                    nodes.Add(node);
                    continue;
                }

                var mask = new Node(next++, OpNames.DropoutMask, node.Inputs, node.Type, node.Attrs, node.Scope, node.Source);
                nodes.Add(mask);
                nodes.Add(node with { Op = OpNames.Mul, Inputs = EquatableArray.Of(node.Inputs[0], mask.Id), Attrs = EquatableArray<Attr>.Empty });
            }

            return graph with { Nodes = nodes.ToEquatableArray() };
        }
    }
}
