using System;
using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>Re-derives every node's type from its inputs and checks it against the recorded one; a difference after
    /// a rewrite is a compiler bug and fails loudly instead of emitting wrong code.</summary>
    public sealed class InferShapes : IGraphPass
    {
        public string Name => "infer_shapes";

        public Graph Run(Graph graph)
        {
            var types = new Dictionary<int, TensorType>();
            foreach (var node in graph.Nodes)
            {
                var missing = node.Inputs.Where(i => !types.ContainsKey(i)).DefaultIfEmpty(-1).First();
                if (missing >= 0)
                {
                    throw new InvalidOperationException($"infer_shapes: %{node.Id} reads %{missing}, which is not defined before it");
                }

                TensorType inferred;
                try
                {
                    inferred = ShapeRules.Infer(node, node.Inputs.Select(i => types[i]).ToList());
                }
                catch (ShapeException ex)
                {
                    throw new InvalidOperationException($"infer_shapes: {IrText.PrintNode(node)}: {ex.Message}");
                }

                if (inferred != node.Type)
                {
                    throw new InvalidOperationException($"infer_shapes: {IrText.PrintNode(node)} should have type {inferred}");
                }

                types[node.Id] = inferred;
            }

            foreach (var output in graph.Outputs)
            {
                if (!types.ContainsKey(output))
                {
                    throw new InvalidOperationException($"infer_shapes: output %{output} is not defined");
                }
            }

            return graph;
        }
    }
}
