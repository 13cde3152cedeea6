using System.Collections.Immutable;
using System.Linq;
using GraphCompiler.Generator.Diagnostics;
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

            var allBlocks = blocks.Collect().WithTrackingName(TrackingNames.AllBlocks);
            var compiled = models
                .Combine(allBlocks)
                .Select(static (pair, _) => ModelCompiler.Compile(pair.Left, pair.Right))
                .WithTrackingName(TrackingNames.Compiled);

            context.RegisterSourceOutput(compiled.Where(static c => c.Source is not null), static (spc, c) => spc.AddSource(c.HintName, c.Source!));
            // Diagnostics are rebuilt against the current compilation's trees so they land in source (squiggles,
            // pragma suppression) rather than as external-file locations; only this output step sees the compilation.
            context.RegisterSourceOutput(compiled.Select(static (c, _) => c.Diagnostics).Combine(context.CompilationProvider), ReportAll);
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
        public const string AllBlocks = nameof(AllBlocks);
        public const string Compiled = nameof(Compiled);
    }
}
