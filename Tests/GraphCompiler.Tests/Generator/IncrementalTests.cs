using System.Reflection;
using GraphCompiler.Generator;
using GraphCompiler.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace GraphCompiler.Tests.Generator;

/// <summary>The generator's tracked steps stay cached when nothing a declaration depends on changed, and recompute
/// when a declaration does.</summary>
public class IncrementalTests
{
    /// <summary>Every step name in <see cref="TrackingNames"/>, by reflection, so a new step is covered too.</summary>
    private static readonly string[] StepNames = typeof(TrackingNames)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral && f.FieldType == typeof(string))
        .Select(f => (string)f.GetRawConstantValue()!)
        .OrderBy(n => n, StringComparer.Ordinal)
        .ToArray();

    private static CSharpCompilation Initial() => GeneratorHarness.Compilation(
        ("EncoderLayer.cs", TestDeclarations.EncoderLayerBlock),
        ("TinyEncoder.cs", TestDeclarations.TinyEncoder),
        ("Helpers.cs", TestDeclarations.Unrelated));

    private static SyntaxTree Tree(string path, string source) => CSharpSyntaxTree.ParseText(source, GeneratorHarness.ParseOptions, path: path);

    private static CSharpCompilation Replace(CSharpCompilation compilation, string path, string source) =>
        compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.Single(t => t.FilePath == path), Tree(path, source));

    private static (GeneratorDriver Driver, GeneratorRunResult First) RunOnce(CSharpCompilation compilation)
    {
        var driver = GeneratorHarness.Driver(trackSteps: true).RunGenerators(compilation);
        var first = driver.GetRunResult().Results.Single();
        Assert.Null(first.Exception);
        Assert.Single(GeneratorHarness.ModuleSources(first));
        Assert.Empty(first.Diagnostics);
        return (driver, first);
    }

    private static Dictionary<string, List<IncrementalStepRunReason>> Reasons(GeneratorRunResult result)
    {
        var reasons = new Dictionary<string, List<IncrementalStepRunReason>>(StringComparer.Ordinal);
        foreach (var name in StepNames)
        {
            Assert.True(result.TrackedSteps.TryGetValue(name, out var steps), $"step {name} did not run");
            reasons[name] = steps.SelectMany(s => s.Outputs).Select(o => o.Reason).ToList();
            Assert.NotEmpty(reasons[name]);
        }

        return reasons;
    }

    private static void AssertAllCached(GeneratorRunResult result)
    {
        foreach (var (name, reasons) in Reasons(result))
        {
            Assert.All(reasons, r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"step {name} output was {r}"));
        }
    }

    [Fact]
    public void TrackingNamesAreAllKnown()
    {
        Assert.Equal(new[] { "AllBlocks", "Blocks", "Compiled", "Models", "ReferencedDeclarations", "ReferencedManifests", "ResolvedModels" }, StepNames);
    }

    [Fact]
    public void EditingAnUnrelatedClassKeepsEveryStepCached()
    {
        var compilation = Initial();
        var (driver, _) = RunOnce(compilation);

        var edited = Replace(compilation, "Helpers.cs", TestDeclarations.Unrelated.Replace("2 * x", "x + x + 0"));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        AssertAllCached(result);
        Assert.Single(GeneratorHarness.ModuleSources(result));
    }

    [Fact]
    public void AddingAnUnrelatedFileKeepsEveryStepCached()
    {
        var compilation = Initial();
        var (driver, _) = RunOnce(compilation);

        var added = compilation.AddSyntaxTrees(Tree("More.cs", "namespace TestModels;\n\npublic sealed class More { public int Value { get; set; } }\n"));
        var result = driver.RunGenerators(added).GetRunResult().Results.Single();

        AssertAllCached(result);
    }

    [Fact]
    public void ATrailingCommentInTheModelFileKeepsEveryStepCached()
    {
        // The declaration's file is re-parsed, but its spec (locations included) is equal, so nothing downstream reruns.
        var compilation = Initial();
        var (driver, _) = RunOnce(compilation);

        var edited = Replace(compilation, "TinyEncoder.cs", TestDeclarations.TinyEncoder + "\n// trailing note\n");
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        AssertAllCached(result);
    }

    [Fact]
    public void InsertingALineAboveTheModelKeepsEveryStepCached()
    {
        // Locations in the specs are relative to their declaration, so moving the declaration changes no spec.
        var compilation = Initial();
        var (driver, first) = RunOnce(compilation);

        var edited = Replace(compilation, "TinyEncoder.cs", TestDeclarations.TinyEncoder.Replace("[Model(", "// a note above the model\n[Model("));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        AssertAllCached(result);
        Assert.Equal(GeneratorHarness.ModuleSources(first).Single().SourceText.ToString(), GeneratorHarness.ModuleSources(result).Single().SourceText.ToString());
    }

    [Fact]
    public void InsertingLinesAboveABlockKeepsEveryStepCached()
    {
        var compilation = Initial();
        var (driver, first) = RunOnce(compilation);

        var edited = Replace(compilation, "EncoderLayer.cs", TestDeclarations.EncoderLayerBlock.Replace("[Block]", "\n\n// moved down\n[Block]"));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        AssertAllCached(result);
        Assert.Equal(GeneratorHarness.ModuleSources(first).Single().SourceText.ToString(), GeneratorHarness.ModuleSources(result).Single().SourceText.ToString());
    }

    [Fact]
    public void ACachedDiagnosticFollowsItsDeclarationWhenLinesAreInsertedAbove()
    {
        // A lowering error (from the Compiled step) is reported at the moved [StaticShapes] line although no step reran.
        var broken = TestDeclarations.TinyEncoder.Replace("PositionEmbedding(inputIds, 16,", "PositionEmbedding(inputIds, 12,");
        var compilation = GeneratorHarness.Compilation(
            ("EncoderLayer.cs", TestDeclarations.EncoderLayerBlock),
            ("TinyEncoder.cs", broken),
            ("Helpers.cs", TestDeclarations.Unrelated));
        var driver = GeneratorHarness.Driver(trackSteps: true).RunGenerators(compilation);
        var before = Assert.Single(driver.GetRunResult().Results.Single().Diagnostics);

        var moved = broken.Replace("[Model(", "// one\n// two\n[Model(");
        var result = driver.RunGenerators(Replace(compilation, "TinyEncoder.cs", moved)).GetRunResult().Results.Single();
        var after = Assert.Single(result.Diagnostics);

        AssertAllCached(result);
        Assert.Equal(before.Id, after.Id);
        Assert.Equal(before.Location.GetLineSpan().StartLinePosition.Line + 2, after.Location.GetLineSpan().StartLinePosition.Line);
        Assert.Equal(moved.IndexOf("[StaticShapes", StringComparison.Ordinal) + 1, after.Location.SourceSpan.Start);
        Assert.True(after.Location.IsInSource);
    }

    [Fact]
    public void RerunningOnACloneKeepsEveryStepCached()
    {
        var compilation = Initial();
        var (driver, first) = RunOnce(compilation);

        var result = driver.RunGenerators(compilation.Clone()).GetRunResult().Results.Single();

        AssertAllCached(result);
        Assert.Equal(GeneratorHarness.ModuleSources(first).Single().SourceText.ToString(), GeneratorHarness.ModuleSources(result).Single().SourceText.ToString());
    }

    [Fact]
    public void EditingTheModelsForwardRecompiles()
    {
        var compilation = Initial();
        var (driver, first) = RunOnce(compilation);

        var edited = Replace(compilation, "TinyEncoder.cs", TestDeclarations.TinyEncoder.Replace("Dropout(pooled, 0.1)", "Dropout(pooled, 0.2)"));
        Assert.NotEqual(compilation.SyntaxTrees.Single(t => t.FilePath == "TinyEncoder.cs").ToString(), edited.SyntaxTrees.Single(t => t.FilePath == "TinyEncoder.cs").ToString());
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();
        var reasons = Reasons(result);

        Assert.Contains(IncrementalStepRunReason.Modified, reasons[TrackingNames.Models]);
        Assert.Equal(new[] { IncrementalStepRunReason.Modified }, reasons[TrackingNames.Compiled]);
        Assert.All(reasons[TrackingNames.Blocks], r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged));
        Assert.Contains("0.2", GeneratorHarness.ModuleSources(result).Single().SourceText.ToString());
        Assert.NotEqual(GeneratorHarness.ModuleSources(first).Single().SourceText.ToString(), GeneratorHarness.ModuleSources(result).Single().SourceText.ToString());
    }

    [Fact]
    public void EditingABlocksForwardRecompilesTheModel()
    {
        var compilation = Initial();
        var (driver, _) = RunOnce(compilation);

        var edited = Replace(compilation, "EncoderLayer.cs", TestDeclarations.EncoderLayerBlock.Replace("Gelu(Linear(h, Hidden, Ffn", "Tanh(Linear(h, Hidden, Ffn"));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();
        var reasons = Reasons(result);

        Assert.Contains(IncrementalStepRunReason.Modified, reasons[TrackingNames.Blocks]);
        Assert.Equal(new[] { IncrementalStepRunReason.Modified }, reasons[TrackingNames.AllBlocks]);
        Assert.Equal(new[] { IncrementalStepRunReason.Modified }, reasons[TrackingNames.Compiled]);
        Assert.All(reasons[TrackingNames.Models], r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged));
    }
}
