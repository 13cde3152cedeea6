using System.Collections.Generic;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>add(matmul(x, Wᵀ), b) with a weight and a bias parameter → linear(x, W, b): one addmm, the bias
    /// added by the GEMM instead of a second pass over the output.</summary>
    public sealed class FoldBiasIntoGemm : IGraphPass
    {
        public string Name => "fold_bias_into_gemm";

        public Graph Run(Graph graph)
        {
            var byId = graph.ById();
            var uses = graph.UseCounts();
            var replacements = new Dictionary<int, Node>();
            foreach (var add in graph.Nodes)
            {
                if (add.Op != OpNames.Add)
                {
                    continue;
                }

                var mm = byId[add.Inputs[0]];
                var bias = byId[add.Inputs[1]];
                if (mm.Op != OpNames.MatMul || !mm.Flag("transB") || !Rewrite.SingleUse(uses, graph, mm.Id))
                {
                    continue;
                }

                var weight = byId[mm.Inputs[1]];
                if (weight.Op != OpNames.Param || weight.Type.Rank != 2 || bias.Op != OpNames.Param || bias.Type.Rank != 1 || bias.Type.Shape[0] != weight.Type.Shape[0])
                {
                    continue;
                }

                replacements[add.Id] = add with { Op = OpNames.Linear, Inputs = EquatableArray.Of(mm.Inputs[0], weight.Id, bias.Id), Attrs = EquatableArray<Attr>.Empty };
            }

            return Rewrite.Replace(graph, replacements);
        }
    }
}
