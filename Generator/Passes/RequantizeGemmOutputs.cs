using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>Requantize placement in the int8 graph: an int8 GEMM whose only consumer is another int8 GEMM's input
    /// (in BERT the FFN's up-projection + GELU feeding its down-projection) quantizes its result with that consumer's
    /// input scale → qlinear[_gelu]_requantize, i8 out. The consumer then skips its quantize pass, and the f32
    /// activation between the two — the largest in the layer — is never written. The consumer's input_scale parameter
    /// moves up to just before the producer, which now reads it. Runs after <see cref="QuantizeInt8"/>.</summary>
    public sealed class RequantizeGemmOutputs : IGraphPass
    {
        public string Name => "requantize_gemm_outputs";

        public Graph Run(Graph graph)
        {
            var uses = graph.UseCounts();
            var byId = graph.ById();
            var consumers = new Dictionary<int, Node>();
            foreach (var node in graph.Nodes.Where(n => OpNames.IsQuantizedGemm(n.Op)))
            {
                consumers[node.Inputs[0]] = node;
            }

            // The consumer's input_scale parameter, keyed by the producer it now also feeds (and must precede).
            var movedBefore = new Dictionary<int, Node>();
            var replacements = new Dictionary<int, Node>();
            foreach (var producer in graph.Nodes.Where(n => n.Op is OpNames.QLinear or OpNames.QLinearGelu))
            {
                if (!Rewrite.SingleUse(uses, graph, producer.Id) || !consumers.TryGetValue(producer.Id, out var consumer))
                {
                    continue;
                }

                var outputScale = byId[consumer.Inputs[3]];
                movedBefore[producer.Id] = outputScale;
                replacements[producer.Id] = producer with
                {
                    Op = producer.Op == OpNames.QLinearGelu ? OpNames.QLinearGeluRequantize : OpNames.QLinearRequantize,
                    Inputs = producer.Inputs.Append(outputScale.Id).ToEquatableArray(),
                    Type = producer.Type with { Element = ElementType.I8 },
                };
            }

            if (replacements.Count == 0)
            {
                return graph;
            }

            var movedIds = new HashSet<int>(movedBefore.Values.Select(p => p.Id));
            var nodes = new List<Node>();
            foreach (var node in graph.Nodes.Where(n => !movedIds.Contains(n.Id)))
            {
                if (movedBefore.TryGetValue(node.Id, out var param))
                {
                    nodes.Add(param);
                }

                nodes.Add(replacements.TryGetValue(node.Id, out var replacement) ? replacement : node);
            }

            return graph with { Nodes = nodes.ToEquatableArray() };
        }
    }
}
