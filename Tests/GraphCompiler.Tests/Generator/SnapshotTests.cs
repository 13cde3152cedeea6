using GraphCompiler.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Xunit;

namespace GraphCompiler.Tests.Generator;

/// <summary>The generated module of each declaration, compared with Snapshots/&lt;Name&gt;.verified.cs; it must also compile
/// without diagnostics, and generation must be deterministic.</summary>
public class SnapshotTests
{
    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var name in TestDeclarations.Cases.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            data.Add(name);
        }

        return data;
    }

    private static (GeneratorDriverRunResult Result, Compilation Output) Generate(IEnumerable<(string Path, string Source)> files) =>
        GeneratorHarness.Run(GeneratorHarness.Compilation(files.ToArray()));

    private static string GeneratedText(GeneratorDriverRunResult result) =>
        string.Concat(result.Results.Single().GeneratedSources
            .OrderBy(s => s.HintName, StringComparer.Ordinal)
            .Select(s => "// " + s.HintName + "\n" + s.SourceText.ToString()));

    [Theory]
    [MemberData(nameof(Names))]
    public void GeneratedModuleMatchesSnapshotAndCompiles(string name)
    {
        var (result, output) = Generate(TestDeclarations.Cases[name]);

        Assert.Empty(GeneratorHarness.GeneratorDiagnostics(result));
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        var generated = Assert.Single(GeneratorHarness.ModuleSources(result.Results.Single()));
        Assert.Equal("TestModels." + name + "Module.g.cs", generated.HintName);
        Snapshot.Verify(generated.SourceText.ToString(), $"Snapshots/{name}.verified.cs");
    }

    /// <summary>The [Quantize] declaration the int8 tests run (Tests/GraphCompiler.Tests.Declarations/QuantizedModels.cs):
    /// fp32 module with ForwardObserved and QuantizationSlots, then the Int8 module.</summary>
    [Fact]
    public void QuantizedDeclarationMatchesSnapshotAndCompiles()
    {
        var path = Path.Combine(Snapshot.Root, "..", "GraphCompiler.Tests.Declarations", "QuantizedModels.cs");
        var (result, output) = Generate(new[] { ("QuantizedModels.cs", File.ReadAllText(path)) });

        Assert.Empty(GeneratorHarness.GeneratorDiagnostics(result));
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        var generated = Assert.Single(GeneratorHarness.ModuleSources(result.Results.Single()));
        Assert.Equal("GraphCompiler.Tests.Declarations.QuantizedClassifierModule.g.cs", generated.HintName);
        Assert.NotNull(output.GetTypeByMetadataName("GraphCompiler.Tests.Declarations.QuantizedClassifierInt8Module"));
        Snapshot.Verify(generated.SourceText.ToString(), "Snapshots/QuantizedClassifier.verified.cs");
    }

    [Fact]
    public void TupleModelReturnsBothOutputs()
    {
        var (result, output) = Generate(TestDeclarations.Cases["SpanHeads"]);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        var module = output.GetTypeByMetadataName("TestModels.SpanHeadsModule");
        Assert.NotNull(module);
        var forward = module!.GetMembers("forward").OfType<IMethodSymbol>().Single();
        Assert.Equal("(TorchSharp.torch.Tensor, TorchSharp.torch.Tensor)", forward.ReturnType.ToDisplayString());
        Assert.Single(GeneratorHarness.ModuleTrees(result));
    }

    [Fact]
    public void GenerationIsDeterministic()
    {
        // Every declaration at once, run by two fresh drivers, the second with the files in reverse order.
        var files = TestDeclarations.Cases.Values.SelectMany(f => f).Distinct().ToList();
        var first = GeneratedText(Generate(files).Result);
        var second = GeneratedText(Generate(files).Result);
        files.Reverse();
        var reversed = GeneratedText(Generate(files).Result);

        Assert.Equal(6, TestDeclarations.Cases.Count);
        Assert.Equal(first, second);
        Assert.Equal(first, reversed);

        // The same module whether generated alone or next to the others.
        foreach (var (name, caseFiles) in TestDeclarations.Cases)
        {
            var alone = GeneratorHarness.ModuleSources(Generate(caseFiles).Result.Results.Single()).Single().SourceText.ToString();
            Assert.Contains(alone, first);
        }
    }
}
