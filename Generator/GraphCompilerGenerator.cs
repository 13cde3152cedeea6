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
            context.RegisterSourceOutput(compiled.Select(static (c, _) => c.Diagnostics), ReportAll);
            context.RegisterSourceOutput(blocks.Select(static (b, _) => b.Diagnostics), ReportAll);
            context.RegisterSourceOutput(models.Select(static (m, _) => m.Diagnostics), ReportAll);
        }

        private static void ReportAll(SourceProductionContext context, EquatableArray<DiagnosticInfo> diagnostics)
        {
            foreach (var diagnostic in diagnostics)
            {
                context.ReportDiagnostic(diagnostic.ToDiagnostic());
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
