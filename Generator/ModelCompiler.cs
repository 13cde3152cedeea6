using System;
using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Diagnostics;
using GraphCompiler.Generator.Emit;
using GraphCompiler.Generator.Ir;
using GraphCompiler.Generator.Lowering;
using GraphCompiler.Generator.Parsing;
using GraphCompiler.Generator.Passes;

namespace GraphCompiler.Generator
{
    /// <summary>What the pipeline produces for one model: its source (or none) and its diagnostics.</summary>
    public sealed record CompiledModel(string HintName, string? Source, EquatableArray<DiagnosticInfo> Diagnostics);

    /// <summary>lower → passes → emit for one model. Never throws: failures become diagnostics on the declaration.</summary>
    public static class ModelCompiler
    {
        public static CompiledModel Compile(DeclarationSpec model, IReadOnlyList<DeclarationSpec> blocks) =>
            Compile(model, new BlockLibrary(blocks.ToEquatableArray(), EquatableArray<BrokenManifest>.Empty));

        public static CompiledModel Compile(DeclarationSpec model, BlockLibrary library)
        {
            var hintName = (model.Namespace.Length > 0 ? model.Namespace + "." : "") + model.Name + "Module.g.cs";
            if (model.Model is null || model.Forward is null || model.Diagnostics.Count > 0 || model.IsAbstract)
            {
                return new CompiledModel(hintName, null, EquatableArray<DiagnosticInfo>.Empty); // parse diagnostics are reported with the declaration
            }

            try
            {
                var (lowered, optimized) = CompileGraph(model, library.Blocks, library.Broken);
                var (training, backward) = CompileTraining(lowered);
                var quantized = model.Model.Quantize is { } quantize ? CompileQuantized(model.Name, quantize, optimized) : null;
                return new CompiledModel(hintName, ModelEmitter.Emit(model, lowered, optimized, training, backward, quantized), EquatableArray<DiagnosticInfo>.Empty);
            }
            catch (CompileErrorException ex)
            {
                return new CompiledModel(hintName, null, EquatableArray.Of(InUserCode(model, ex.Diagnostic)));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return new CompiledModel(hintName, null, EquatableArray.Of(DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, model.Location, model.Name, ex.GetType().Name + ": " + ex.Message)));
            }
        }

        /// <summary>A diagnostic located in another assembly's source (the Forward of a base model from a referenced
        /// assembly) cannot be shown there: it goes on the model's declaration, saying where it arose. One in a local
        /// base model's Forward stays there and adds the configuration-only model that set the values.</summary>
        private static DiagnosticInfo InUserCode(DeclarationSpec model, DiagnosticInfo diagnostic)
        {
            if (diagnostic.Location is { IsExternal: true } external)
            {
                return diagnostic.WithContext($" (in model '{model.Model!.ModelName}', at {external.ShortText} of assembly '{external.Assembly}')", model.Location, null);
            }

            if (model.Base is { } configured && diagnostic.Location is { } location && location.Anchor != model.Location?.Anchor)
            {
                return diagnostic.WithContext($" (in model '{model.Model!.ModelName}', which configures '{configured.Name}')", location, model.Location);
            }

            return diagnostic;
        }

        /// <summary>The model's graph as lowered and after the pass pipeline (throws <see cref="CompileErrorException"/>).</summary>
        public static (Graph Lowered, Graph Optimized) CompileGraph(DeclarationSpec model, IReadOnlyList<DeclarationSpec> blocks) =>
            CompileGraph(model, blocks, EquatableArray<BrokenManifest>.Empty);

        public static (Graph Lowered, Graph Optimized) CompileGraph(DeclarationSpec model, IReadOnlyList<DeclarationSpec> blocks, IReadOnlyList<BrokenManifest> broken)
        {
            var byName = new Dictionary<string, DeclarationSpec>(StringComparer.Ordinal);
            foreach (var block in blocks)
            {
                byName[block.FullName] = block;
            }

            var failed = BrokenBlockReached(model, byName);
            if (failed is not null)
            {
                // The block's own diagnostics explain it; say at the model why it was not compiled.
                throw new CompileErrorException(DiagnosticInfo.Create(DiagnosticDescriptors.BadDeclaration, model.Location, model.Name, $"block '{failed.Name}' it applies has errors"));
            }

            var lowered = Lowerer.Lower(model, byName, broken);
            return (lowered, PassPipeline.Run(lowered));
        }

        /// <summary>The training forward (dropout masks explicit, nothing fused that the backward needs inside) and its
        /// generated backward.</summary>
        public static (Graph Training, BackwardGraph Backward) CompileTraining(Graph lowered)
        {
            var training = PassPipeline.Run(lowered, PassPipeline.Training);
            var backward = Autodiff.Differentiate(training);
            // The backward goes through the same fusion passes as any graph; the values it still reads are what the
            // forward must save.
            var optimized = PassPipeline.Run(backward.Graph);
            var stillSaved = optimized.Nodes.Where(n => n.Op == OpNames.Saved).Select(n => (int)n.Int("ref")).ToList();
            return (training, backward with { Graph = optimized, SavedValues = backward.SavedValues.Where(stillSaved.Contains).ToEquatableArray() });
        }

        /// <summary>A [Quantize] model's calibration and int8 graphs, both from the optimized graph (so the packed QKV GEMM
        /// and the fused bias+GELU GEMM are one GEMM each). An Exclude prefix naming no quantizable GEMM or embedding
        /// table is GC0011.</summary>
        public static QuantizedGraphs CompileQuantized(string modelName, QuantizeInfo quantize, Graph optimized)
        {
            var exclude = quantize.Exclude.ToList();
            var unmatched = QuantizationPlan.UnmatchedPrefix(optimized, exclude);
            if (unmatched is not null)
            {
                var quantizable = QuantizationPlan.Candidates(optimized).Select(g => g.WeightName)
                    .Concat(QuantizationPlan.TableCandidates(optimized).Select(t => t.TableName)).ToList();
                throw new CompileErrorException(DiagnosticInfo.Create(DiagnosticDescriptors.BadQuantization, quantize.Location, modelName,
                    $"Exclude prefix '{unmatched}' matches no GEMM weight or embedding table that would be quantized (" +
                    (quantizable.Count == 0 ? "the model has none" : "they are: " + string.Join(", ", quantizable.Take(4)) + (quantizable.Count > 4 ? ", …" : "")) +
                    "); GEMMs without a sequence dimension and position tables stay fp32 anyway"));
            }

            var gemms = QuantizationPlan.Select(optimized, exclude);
            return new QuantizedGraphs(PassPipeline.Run(optimized, PassPipeline.CalibrationTail(exclude)), PassPipeline.Run(optimized, PassPipeline.Int8Tail(exclude)), gemms);
        }

        /// <summary>The first block with errors that the model applies, directly or through other blocks.</summary>
        private static DeclarationSpec? BrokenBlockReached(DeclarationSpec model, IReadOnlyDictionary<string, DeclarationSpec> blocks)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var pending = new Stack<DeclarationSpec>();
            pending.Push(model);
            while (pending.Count > 0)
            {
                var declaration = pending.Pop();
                var applied = new List<string>();
                Collect(declaration.Forward?.Body.Select(s => s.Value) ?? Enumerable.Empty<DslExpr>(), applied);
                foreach (var name in applied)
                {
                    if (seen.Add(name) && blocks.TryGetValue(name, out var block))
                    {
                        if (block.Diagnostics.Count > 0)
                        {
                            return block;
                        }

                        pending.Push(block);
                    }
                }
            }

            return null;
        }

        private static void Collect(IEnumerable<DslExpr> exprs, List<string> blocks)
        {
            foreach (var e in exprs)
            {
                switch (e)
                {
                    case NewBlockExpr nb:
                        blocks.Add(nb.BlockFullName);
                        Collect(nb.Initializers.Select(i => i.Value), blocks);
                        break;
                    case CallExpr c:
                        Collect(c.Args.Select(a => a.Value), blocks);
                        break;
                    case ArrayExpr a:
                        Collect(a.Items, blocks);
                        break;
                    case TupleExpr t:
                        Collect(t.Items, blocks);
                        break;
                    case BinaryExpr b:
                        Collect(new[] { b.Left, b.Right }, blocks);
                        break;
                    case UnaryExpr u:
                        Collect(new[] { u.Operand }, blocks);
                        break;
                }
            }
        }
    }
}
