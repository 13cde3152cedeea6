using System.Collections.Immutable;
using System.Linq;
using GraphCompiler.Generator.Diagnostics;
using GraphCompiler.Generator.Emit;
using GraphCompiler.Generator.Parsing;
using Microsoft.CodeAnalysis;

namespace GraphCompiler.Generator
{
    /// <summary>Entry point: wires parse → compile → emit as incremental steps with tracking names.</summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class GraphCompilerGenerator : IIncrementalGenerator
    {
        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            var blocks = context.SyntaxProvider
                .ForAttributeWithMetadataName(Parser.BlockAttribute, static (node, _) => node is Microsoft.CodeAnalysis.CSharp.Syntax.ClassDeclarationSyntax, Parser.Parse)
                .WithTrackingName(TrackingNames.Blocks);
            var models = context.SyntaxProvider
                .ForAttributeWithMetadataName(Parser.ModelAttribute, static (node, _) => node is Microsoft.CodeAnalysis.CSharp.Syntax.ClassDeclarationSyntax, Parser.Parse)
                .WithTrackingName(TrackingNames.Models);

            // Declarations of referenced assemblies, from their manifests. The compilation changes on every edit; the
            // manifests it yields only when a reference does, so everything downstream stays cached.
            var referencedManifests = context.CompilationProvider
                .Select(static (compilation, ct) => ReferencedManifests.Read(compilation, ct))
                .WithTrackingName(TrackingNames.ReferencedManifests);
            var referenced = referencedManifests
                .Select(static (entries, ct) => ReferencedManifests.Decode(entries, ct))
                .WithTrackingName(TrackingNames.ReferencedDeclarations);

            var allBlocks = blocks.Collect()
                .Combine(referenced)
                .Select(static (pair, _) => BlockLibrary.Of(pair.Left, pair.Right))
                .WithTrackingName(TrackingNames.AllBlocks);
            var resolved = models
                .Combine(models.Collect().Combine(referenced))
                .Select(static (pair, _) => ConfiguredModels.Resolve(pair.Left, pair.Right.Left, pair.Right.Right))
                .WithTrackingName(TrackingNames.ResolvedModels);
            var compiled = resolved
                .Combine(allBlocks)
                .Select(static (pair, _) => ModelCompiler.Compile(pair.Left.Spec, pair.Right))
                .WithTrackingName(TrackingNames.Compiled);

            context.RegisterSourceOutput(compiled.Where(static c => c.Source is not null), static (spc, c) => spc.AddSource(c.HintName, c.Source!));
            // Every GC diagnostic is an error, so a build that has one produces no assembly to reference: no manifest.
            var failed = compiled.Select(static (c, _) => c.Diagnostics.Count > 0).Collect()
                .Combine(resolved.Select(static (r, _) => r.Diagnostics.Count > 0).Collect())
                .Select(static (pair, _) => pair.Left.Any(f => f) || pair.Right.Any(f => f));
            context.RegisterSourceOutput(
                blocks.Collect().Combine(resolved.Select(static (r, _) => r.Spec).Collect()).Combine(failed),
                static (spc, input) =>
                {
                    if (!input.Right)
                    {
                        ManifestEmitter.AddSource(spc, input.Left.Left.Concat(input.Left.Right));
                    }
                });
            // Diagnostics are rebuilt against the current compilation's trees so they land in source (squiggles,
            // pragma suppression) rather than as external-file locations; only this output step sees the compilation.
            context.RegisterSourceOutput(compiled.Select(static (c, _) => c.Diagnostics).Combine(context.CompilationProvider), ReportAll);
            context.RegisterSourceOutput(resolved.Select(static (r, _) => r.Diagnostics).Combine(context.CompilationProvider), ReportAll);
            context.RegisterSourceOutput(blocks.Select(static (b, _) => b.Diagnostics).Combine(context.CompilationProvider), ReportAll);
            context.RegisterSourceOutput(models.Select(static (m, _) => m.Diagnostics).Combine(context.CompilationProvider), ReportAll);
        }

        private static void ReportAll(SourceProductionContext context, (EquatableArray<DiagnosticInfo> Diagnostics, Compilation Compilation) input)
        {
            foreach (var diagnostic in input.Diagnostics)
            {
                context.ReportDiagnostic(diagnostic.ToDiagnostic(input.Compilation));
            }
        }
    }

    /// <summary>Names of the tracked incremental steps (tests assert they stay cached).</summary>
    public static class TrackingNames
    {
        public const string Blocks = nameof(Blocks);
        public const string Models = nameof(Models);
        public const string ReferencedManifests = nameof(ReferencedManifests);
        public const string ReferencedDeclarations = nameof(ReferencedDeclarations);
        public const string AllBlocks = nameof(AllBlocks);
        public const string ResolvedModels = nameof(ResolvedModels);
        public const string Compiled = nameof(Compiled);
    }
}
