using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>The calibration variant: an observe node before each GEMM that <see cref="QuantizeInt8"/> would quantize,
    /// so a calibration forward sees exactly the activations that get per-tensor scales. Runs after the default
    /// pipeline (one observer for the packed QKV GEMM, the fused GELU GEMM's input once).</summary>
    public sealed class InsertObservers : IGraphPass
    {
        private readonly IReadOnlyCollection<string> _exclude;

        public InsertObservers(IReadOnlyCollection<string>? exclude = null) => _exclude = exclude ?? new string[0];

        public string Name => "insert_observers";

        public Graph Run(Graph graph)
        {
            var byId = graph.ById();
            var next = graph.NextId;
            var inserted = new Dictionary<int, List<Node>>();
            var replacements = new Dictionary<int, Node>();
            foreach (var gemm in QuantizationPlan.Select(graph, _exclude))
            {
                var node = byId[gemm.NodeId];
                var x = byId[node.Inputs[0]];
                var observe = new Node(next++, OpNames.Observe, EquatableArray.Of(x.Id), x.Type,
                    new[] { Attr.Str("kind", gemm.Kind), Attr.Str("slot", gemm.Slot) }.ToEquatableArray(), node.Scope, node.Source);
                inserted[node.Id] = new List<Node> { observe };
                replacements[node.Id] = node with { Inputs = node.Inputs.Select((input, i) => i == 0 ? observe.Id : input).ToEquatableArray() };
            }

            return inserted.Count == 0 ? graph : QuantizationPlan.InsertBefore(graph, inserted, replacements);
        }
    }
}
