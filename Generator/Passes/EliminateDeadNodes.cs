using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>Drops nodes no output depends on (what fusion left behind, unused parameters). Inputs stay: they are
    /// the model's signature.</summary>
    public sealed class EliminateDeadNodes : IGraphPass
    {
        public string Name => "eliminate_dead_nodes";

        public Graph Run(Graph graph)
        {
            var byId = graph.ById();
            var live = new HashSet<int>();
            var work = new Stack<int>(graph.Outputs);
            while (work.Count > 0)
            {
                var id = work.Pop();
                if (live.Add(id))
                {
                    foreach (var input in byId[id].Inputs)
                    {
                        work.Push(input);
                    }
                }
            }

            return graph with { Nodes = graph.Nodes.Where(n => live.Contains(n.Id) || n.Op == OpNames.Input).ToEquatableArray() };
        }
    }
}
