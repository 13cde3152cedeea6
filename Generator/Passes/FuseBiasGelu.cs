using System.Collections.Generic;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>gelu(linear(x, W, b)) → linear_gelu(x, W, b): the activation runs in place on the GEMM's output.</summary>
    public sealed class FuseBiasGelu : IGraphPass
    {
        public string Name => "fuse_bias_gelu";

        public Graph Run(Graph graph)
        {
            var byId = graph.ById();
            var uses = graph.UseCounts();
            var replacements = new Dictionary<int, Node>();
            foreach (var gelu in graph.Nodes)
            {
                if (gelu.Op != OpNames.Gelu)
                {
                    continue;
                }

                var linear = byId[gelu.Inputs[0]];
                if (linear.Op == OpNames.Linear && Rewrite.SingleUse(uses, graph, linear.Id))
                {
                    replacements[gelu.Id] = gelu with { Op = OpNames.LinearGelu, Inputs = linear.Inputs, Scope = linear.Scope };
                }
            }

            return Rewrite.Replace(graph, replacements);
        }
    }
}
