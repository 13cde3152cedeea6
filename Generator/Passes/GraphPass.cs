using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>A pure, named rewrite Graph → Graph.</summary>
    public interface IGraphPass
    {
        string Name { get; }

        Graph Run(Graph graph);
    }

    /// <summary>The passes every model goes through, in order.</summary>
    public static class PassPipeline
    {
        public static readonly IReadOnlyList<IGraphPass> Default = new IGraphPass[]
        {
            new InferShapes(),
            new FoldBiasIntoGemm(),
            new PackSiblingLinears(),
            new FuseAttention(),
            new FuseBiasGelu(),
            new FuseAddLayerNorm(),
            new MergeSliceGrads(),
            new FuseSoftmaxGrad(),
            new EliminateDeadNodes(),
            new InferShapes(),
        };

        /// <summary>The training forward: dropout masks explicit (saved for the backward), attention left unfused where it
        /// has dropout, GELU and residual+LayerNorm unfused so the backward can save their inputs.</summary>
        public static readonly IReadOnlyList<IGraphPass> Training = new IGraphPass[]
        {
            new InferShapes(),
            new ExplicitDropoutMasks(),
            new FoldBiasIntoGemm(),
            new PackSiblingLinears(),
            new FuseAttention(),
            new EliminateDeadNodes(),
            new InferShapes(),
        };

        /// <summary>The calibration graph of a [Quantize] model: the default pipeline, then an observe node before every
        /// GEMM the int8 variant quantizes.</summary>
        public static readonly IReadOnlyList<IGraphPass> Calibration = Default.Concat(CalibrationTail()).ToArray();

        /// <summary>The int8 graph of a [Quantize] model: the default pipeline, then qlinear GEMMs, with requantized
        /// outputs where one int8 GEMM feeds another.</summary>
        public static readonly IReadOnlyList<IGraphPass> Int8 = Default.Concat(Int8Tail()).ToArray();

        /// <summary>What <see cref="Calibration"/> adds after <see cref="Default"/>, with [Quantize(Exclude = ...)].</summary>
        public static IReadOnlyList<IGraphPass> CalibrationTail(IReadOnlyCollection<string>? exclude = null) =>
            new IGraphPass[] { new InsertObservers(exclude), new InferShapes() };

        /// <summary>What <see cref="Int8"/> adds after <see cref="Default"/>, with [Quantize(Exclude = ...)].</summary>
        public static IReadOnlyList<IGraphPass> Int8Tail(IReadOnlyCollection<string>? exclude = null) =>
            new IGraphPass[] { new QuantizeInt8(exclude), new RequantizeGemmOutputs(), new InferShapes() };

        public static Graph Run(Graph graph, IEnumerable<IGraphPass>? passes = null) =>
            (passes ?? Default).Aggregate(graph, (g, pass) => pass.Run(g));

        public static string Names(IEnumerable<IGraphPass>? passes = null) =>
            string.Join(", ", (passes ?? Default).Select(p => p.Name).Distinct());
    }

    /// <summary>Helpers for rewrites that replace a matched chain by one node keeping the root's id, so every
    /// consumer stays valid and the text form diffs cleanly.</summary>
    internal static class Rewrite
    {
        /// <summary>Nodes with exactly one consumer (and not a graph output) can be absorbed into a fused node.</summary>
        public static bool SingleUse(Dictionary<int, int> uses, Graph graph, int id) => uses[id] == 1 && !graph.Outputs.Contains(id);

        public static Graph Replace(Graph graph, IReadOnlyDictionary<int, Node> replacements) =>
            graph with { Nodes = graph.Nodes.Select(n => replacements.TryGetValue(n.Id, out var r) ? r : n).ToEquatableArray() };
    }
}
