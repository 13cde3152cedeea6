using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>layer_norm(add(a, b)) with same-shape a and b → add_layer_norm(a, b, w, bias): BERT's post-LN
    /// residual in one kernel call, the sum never kept.</summary>
    public sealed class FuseAddLayerNorm : IGraphPass
    {
        public string Name => "fuse_add_layer_norm";

        public Graph Run(Graph graph)
        {
            var byId = graph.ById();
            var uses = graph.UseCounts();
            var replacements = new Dictionary<int, Node>();
            foreach (var norm in graph.Nodes)
            {
                if (norm.Op != OpNames.LayerNorm)
                {
                    continue;
                }

                var add = byId[norm.Inputs[0]];
                if (add.Op != OpNames.Add || !Rewrite.SingleUse(uses, graph, add.Id)
                    || !byId[add.Inputs[0]].Type.Shape.SequenceEqual(byId[add.Inputs[1]].Type.Shape))
                {
                    continue;
                }

                replacements[norm.Id] = norm with
                {
                    Op = OpNames.AddLayerNorm,
                    Inputs = EquatableArray.Of(add.Inputs[0], add.Inputs[1], norm.Inputs[1], norm.Inputs[2]),
                };
            }

            return Rewrite.Replace(graph, replacements);
        }
    }
}
