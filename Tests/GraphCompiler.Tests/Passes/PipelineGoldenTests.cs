using GraphCompiler.Generator;
using GraphCompiler.Generator.Ir;
using GraphCompiler.Generator.Parsing;
using GraphCompiler.Generator.Passes;
using GraphCompiler.Tests.Generator;
using GraphCompiler.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Xunit;

namespace GraphCompiler.Tests.Passes;

/// <summary>Whole-pipeline goldens: a declaration in source is parsed by the generator (its DeclarationSpecs are
/// taken from the tracked Blocks/Models steps), lowered, and run through the default pass pipeline; both IR texts
/// are compared with Golden/pipeline/&lt;model&gt;.{lowered,optimized}.ir.</summary>
public class PipelineGoldenTests
{
    public static readonly string[] Models = { "Mlp", "OneLayer", "TinyEncoder", "SpanHeads", "Llama" };

    /// <summary>The parsed specs of a case's sources: the model and every block.</summary>
    public static (DeclarationSpec Model, IReadOnlyList<DeclarationSpec> Blocks) Specs(string name)
    {
        var driver = GeneratorHarness.Driver(trackSteps: true).RunGenerators(GeneratorHarness.Compilation(TestDeclarations.Cases[name]));
        var steps = driver.GetRunResult().Results.Single().TrackedSteps;
        static IEnumerable<DeclarationSpec> Outputs(IEnumerable<IncrementalGeneratorRunStep>? runs) =>
            (runs ?? Enumerable.Empty<IncrementalGeneratorRunStep>()).SelectMany(s => s.Outputs).Select(o => (DeclarationSpec)o.Value);

        var model = Outputs(steps[TrackingNames.Models]).Single();
        var blocks = Outputs(steps.TryGetValue(TrackingNames.Blocks, out var b) ? b : default(IEnumerable<IncrementalGeneratorRunStep>)).ToList();
        Assert.Empty(model.Diagnostics);
        Assert.All(blocks, block => Assert.Empty(block.Diagnostics));
        return (model, blocks);
    }

    public static TheoryData<string> ModelNames()
    {
        var data = new TheoryData<string>();
        foreach (var model in Models)
        {
            data.Add(model);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ModelNames))]
    public void LoweredAndOptimizedIr(string name)
    {
        var (model, blocks) = Specs(name);
        var (lowered, optimized) = ModelCompiler.CompileGraph(model, blocks);

        Snapshot.Verify(IrText.Print(lowered), $"Golden/pipeline/{name}.lowered.ir");
        Snapshot.Verify(IrText.Print(optimized), $"Golden/pipeline/{name}.optimized.ir");

        // The optimized graph is what the pipeline gives the lowered one's text, and a fixed point of it.
        Assert.Equal(optimized, PassPipeline.Run(IrText.Parse(IrText.Print(lowered))));
        Assert.Equal(optimized, PassPipeline.Run(optimized));
    }

    [Fact]
    public void EmbeddedIrMatchesTheGoldens()
    {
        // The generated module embeds the same two IR texts (packed; IrText(IrStage) unpacks them); they must agree with
        // the goldens.
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Compilation(TestDeclarations.Cases["TinyEncoder"]));
        var source = GeneratorHarness.ModuleTrees(result).Single().ToString();
        foreach (var (stage, field) in new[] { ("lowered", "LoweredIr"), ("optimized", "OptimizedIr") })
        {
            var golden = File.ReadAllText(Path.Combine(Snapshot.Root, $"Golden/pipeline/TinyEncoder.{stage}.ir")).Replace("\r\n", "\n");
            var packed = System.Text.RegularExpressions.Regex.Match(source, $"ReadOnlySpan<byte> {field} => \"([A-Za-z0-9+/=]*)\"u8;");
            Assert.True(packed.Success, $"the generated module has no packed {field}");
            Assert.Equal(golden.TrimEnd('\n'), GraphCompiler.Runtime.PackedText.Unpack(System.Text.Encoding.ASCII.GetBytes(packed.Groups[1].Value)));
        }
    }
}
