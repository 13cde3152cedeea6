using GraphCompiler.Generator;
using GraphCompiler.Generator.Ir;
using GraphCompiler.Generator.Parsing;
using GraphCompiler.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace GraphCompiler.Tests.Generator;

/// <summary>Blocks and models reused from a referenced assembly through its declaration manifests, configuration-only
/// models, and diagnostics reported where the user's code applied the declaration.</summary>
public class CrossAssemblyTests
{
    private const string Header = "using GraphCompiler;\nusing static GraphCompiler.Ops;\n\n";

    private const string LayerBody = """
        [Block]
        public partial class Layer
        {
            [Hyper] public int Hidden;
            [Hyper] public int Heads;

            [Forward]
            public Expr Forward(Expr x, Expr mask)
            {
                var q = Linear(x, Hidden, Hidden, "q");
                var a = Attention(q, q, q, mask, Heads, 0.0);
                return LayerNorm(x + a, Hidden, 1e-12, "norm");
            }
        }
        """;

    private const string LayerBlock = GeneratorHarness.Usings + LayerBody;

    /// <summary>A base model for configuration-only models: abstract, so it is not compiled itself.</summary>
    private const string TinyBase = GeneratorHarness.Usings + """
        [Model("tiny_base")]
        public abstract partial class TinyBase
        {
            [Hyper] public int Hidden = 32;
            [Hyper] public int Heads = 4;
            [Hyper] public int Classes = 2;

            [Forward]
            public Expr Forward([Input(DType.Int64, "batch", "seq")] Expr ids, [Input(DType.Int64, "batch")] Expr lengths)
            {
                var x = Embedding(ids, 100, Hidden, "words");
                var mask = LengthMask(lengths, ids);
                var h = Apply("layer", new Layer { Hidden = Hidden, Heads = Heads }, x, mask);
                return Linear(Select(h, 1, 0), Hidden, Classes, "classifier");
            }
        }
        """;

    private static string Configured(string constructor, string baseName = "TinyBase", string members = "") => GeneratorHarness.Usings + $$"""
        [Model("tiny3")]
        [StaticShapes(Batch = 2, SeqLens = new[] { 8 })]
        public partial class Tiny3 : {{baseName}}
        {
            {{members}}
            public Tiny3()
            {
                {{constructor}}
            }
        }
        """;

    private const string Tiny3 = GeneratorHarness.Usings + """
        [Model("tiny3")]
        [StaticShapes(Batch = 2, SeqLens = new[] { 8 })]
        public partial class Tiny3 : TinyBase
        {
            public Tiny3()
            {
                Hidden = 16;
                Classes = 3;
            }
        }
        """;

    /// <summary>What a user writes without configuration-only models: the base's Forward repeated, values inline.</summary>
    private const string Tiny3Written = GeneratorHarness.Usings + """
        [Model("tiny3")]
        [StaticShapes(Batch = 2, SeqLens = new[] { 8 })]
        public partial class Tiny3
        {
            [Hyper] public int Hidden = 16;
            [Hyper] public int Heads = 4;
            [Hyper] public int Classes = 3;

            [Forward]
            public Expr Forward([Input(DType.Int64, "batch", "seq")] Expr ids, [Input(DType.Int64, "batch")] Expr lengths)
            {
                var x = Embedding(ids, 100, Hidden, "words");
                var mask = LengthMask(lengths, ids);
                var h = Apply("layer", new Layer { Hidden = Hidden, Heads = Heads }, x, mask);
                return Linear(Select(h, 1, 0), Hidden, Classes, "classifier");
            }
        }
        """;

    private static string Enc(int heads) => GeneratorHarness.Usings + $$"""
        [Model("enc")]
        [StaticShapes(Batch = 2, SeqLens = new[] { 8, 16 })]
        public partial class Enc
        {
            [Hyper] public int Hidden = 32;

            [Forward]
            public Expr Forward([Input(DType.Int64, "batch", "seq")] Expr ids, [Input(DType.Int64, "batch")] Expr lengths)
            {
                var x = Embedding(ids, 100, Hidden, "words") + PositionEmbedding(ids, 16, Hidden, "positions");
                var mask = LengthMask(lengths, ids);
                return Repeat(2, "layer", new Layer { Hidden = Hidden, Heads = {{heads}} }, x, mask);
            }
        }
        """;

    private static (GeneratorDriverRunResult Result, Compilation Output) RunWith(MetadataReference library, params (string Path, string Source)[] files) =>
        GeneratorHarness.Run(GeneratorHarness.Compilation(files).AddReferences(library));

    private static Diagnostic SingleGeneratorError(GeneratorDriverRunResult result, string id)
    {
        Assert.All(result.Results, r => Assert.Null(r.Exception));
        var diagnostics = GeneratorHarness.GeneratorDiagnostics(result);
        var all = string.Join("\n", diagnostics.Select(d => $"{d.Id} at {d.Location}: {d.GetMessage()}"));
        Assert.True(diagnostics.Count == 1 && diagnostics[0].Id == id, $"expected one {id}, got:\n{all}");
        Assert.True(diagnostics[0].Location.IsInSource, $"{id} must be in the user's source, not at {diagnostics[0].Location}");
        Assert.Empty(GeneratorHarness.ModuleTrees(result));
        return diagnostics[0];
    }

    private static string Modules(GeneratorDriverRunResult result) =>
        string.Concat(GeneratorHarness.ModuleSources(result.Results.Single()).OrderBy(s => s.HintName, StringComparer.Ordinal).Select(s => "// " + s.HintName + "\n" + s.SourceText));

    [Fact]
    public void ABlockFromAReferencedAssemblyCompilesToTheSameModulesAsALocalOne()
    {
        var library = GeneratorHarness.Library("Blocks", withGenerator: true, ("EncoderLayer.cs", TestDeclarations.EncoderLayerBlock));
        var (consumer, output) = RunWith(library, ("OneLayer.cs", TestDeclarations.OneLayer), ("TinyEncoder.cs", TestDeclarations.TinyEncoder));
        var (local, _) = GeneratorHarness.Run(GeneratorHarness.Compilation(
            ("EncoderLayer.cs", TestDeclarations.EncoderLayerBlock), ("OneLayer.cs", TestDeclarations.OneLayer), ("TinyEncoder.cs", TestDeclarations.TinyEncoder)));

        Assert.Empty(GeneratorHarness.GeneratorDiagnostics(consumer));
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        Assert.Equal(2, GeneratorHarness.ModuleSources(consumer.Results.Single()).Count);
        // Locations keep the block's file name and declaration-relative lines, so even the comments agree.
        Assert.Equal(Modules(local), Modules(consumer));
        // The consumer describes only its own declarations: the block stays the library's.
        var manifest = consumer.Results.Single().GeneratedSources.Single(s => s.HintName == GraphCompiler.Generator.Emit.ManifestEmitter.HintName).SourceText.ToString();
        Assert.Contains("\"TestModels.OneLayer\"", manifest);
        Assert.DoesNotContain("\"TestModels.EncoderLayer\"", manifest);
    }

    [Fact]
    public void EveryDeclarationOfTheLibraryRoundTripsThroughItsManifest()
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Compilation(("Layer.cs", LayerBlock), ("TinyBase.cs", TinyBase), ("Llama.cs", TestDeclarations.Llama)));
        var blocks = result.Results.Single().TrackedSteps[TrackingNames.Blocks].SelectMany(s => s.Outputs).Select(o => (DeclarationSpec)o.Value);
        var models = result.Results.Single().TrackedSteps[TrackingNames.Models].SelectMany(s => s.Outputs).Select(o => (DeclarationSpec)o.Value);
        foreach (var spec in blocks.Concat(models))
        {
            var read = ManifestFormat.Read(ManifestFormat.Write(spec), "Lib");
            // Blocks the declaration applies now come from "Lib"; from then on the text is stable.
            Assert.Equal(ManifestFormat.Write(read), ManifestFormat.Write(ManifestFormat.Read(ManifestFormat.Write(read), "Lib")));
            Assert.Equal(spec.Forward!.Body.Select(b => (b.Kind, b.Target, b.Location!.ShortText)), read.Forward!.Body.Select(b => (b.Kind, b.Target, b.Location!.ShortText)));
            Assert.Equal(spec.Model?.ModelName, read.Model?.ModelName);
            Assert.Equal(spec.Model?.Buckets.ToList(), read.Model?.Buckets.ToList());
            Assert.Equal(spec.IsAbstract, read.IsAbstract);
            Assert.Equal(spec.Forward!.Body.Count, read.Forward!.Body.Count);
            Assert.Equal(spec.Hypers.Select(h => (h.Name, h.Kind, h.Default)), read.Hypers.Select(h => (h.Name, h.Kind, h.Default)));
            Assert.Equal(spec.Location!.ShortText, read.Location!.ShortText);
            Assert.Equal("Lib", read.Location.Assembly);
        }
    }

    [Fact]
    public void ATruncatedOrAlteredPayloadDecodesToABrokenManifestNotAnException()
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Compilation(("Layer.cs", LayerBlock)));
        var spec = (DeclarationSpec)result.Results.Single().TrackedSteps[TrackingNames.Blocks].Single().Outputs.Single().Value;
        var payload = ManifestFormat.Write(spec);
        var random = new Random(18);
        var variants = Enumerable.Range(0, payload.Length).Select(cut => payload.Substring(0, cut))
            .Concat(Enumerable.Range(0, 300).Select(_ =>
            {
                var chars = payload.ToCharArray();
                chars[random.Next(chars.Length)] = "0123456789~+^: -aZ"[random.Next(18)];
                return new string(chars);
            }));
        foreach (var variant in variants)
        {
            var decoded = ReferencedManifests.Decode(EquatableArray.Of(new ManifestEntry("Lib", spec.FullName, ManifestFormat.Version, variant)), CancellationToken.None);
            Assert.Equal(1, decoded.Declarations.Count + decoded.Broken.Count);
        }
    }

    [Fact]
    public void AnErrorInsideALocalBlockNamesTheModelAndAddsTheApplyingLine()
    {
        var source = GeneratorHarness.Usings + LayerBody + "\n" + Enc(heads: 5).Substring(GeneratorHarness.Usings.Length);
        var (result, _) = GeneratorHarness.Run(source);

        var diagnostic = SingleGeneratorError(result, "GC0006");
        Assert.Equal("Attention(q, q, q, mask, Heads, 0.0)", GeneratorHarness.LocatedText(diagnostic));
        var applied = Assert.Single(diagnostic.AdditionalLocations);
        Assert.Equal("new Layer { Hidden = Hidden, Heads = 5 }", applied.SourceTree!.GetText().ToString(applied.SourceSpan));
        Assert.Contains("hidden size 32 is not divisible by 5 heads", diagnostic.GetMessage());
        Assert.Contains("as model 'enc' applies it at Model.cs, Enc line", diagnostic.GetMessage());
    }

    [Fact]
    public void AnErrorInsideAReferencedBlockIsReportedAtTheApplyingLine()
    {
        var library = GeneratorHarness.Library("Blocks", withGenerator: true, ("Layer.cs", LayerBlock));
        var (result, _) = RunWith(library, ("Enc.cs", Enc(heads: 5)));

        var diagnostic = SingleGeneratorError(result, "GC0006");
        Assert.Equal("new Layer { Hidden = Hidden, Heads = 5 }", GeneratorHarness.LocatedText(diagnostic));
        Assert.Contains("hidden size 32 is not divisible by 5 heads", diagnostic.GetMessage());
        Assert.Contains("in block 'Layer', at Layer.cs, Layer line 11 of assembly 'Blocks'", diagnostic.GetMessage());
        Assert.Contains("model 'enc'", diagnostic.GetMessage());
    }

    [Fact]
    public void AHyperTheReferencedBlockDoesNotHaveIsGC0013AtTheUsersLine()
    {
        var library = GeneratorHarness.Library("Blocks", withGenerator: true, ("Layer.cs", LayerBlock));
        var source = Enc(heads: 4).Replace("Heads = 4", "Heads = 4, Ffn = 64");
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Compilation(("Enc.cs", source)).AddReferences(library));

        var diagnostics = GeneratorHarness.GeneratorDiagnostics(result);
        var diagnostic = Assert.Single(diagnostics);
        Assert.Equal("GC0013", diagnostic.Id);
        Assert.Equal("64", GeneratorHarness.LocatedText(diagnostic));
        Assert.Contains("'Ffn' is not a [Hyper] of 'Layer'; its hyper-parameters are: Hidden, Heads", diagnostic.GetMessage());
    }

    [Fact]
    public void ABlockOfAnAssemblyBuiltWithoutTheGeneratorIsGC0009SayingSo()
    {
        var library = GeneratorHarness.Library("PlainBlocks", withGenerator: false, ("Layer.cs", LayerBlock));
        var (result, _) = RunWith(library, ("Enc.cs", Enc(heads: 4)));

        var diagnostic = SingleGeneratorError(result, "GC0009");
        Assert.Equal("new Layer { Hidden = Hidden, Heads = 4 }", GeneratorHarness.LocatedText(diagnostic));
        Assert.Contains("'TestModels.Layer' cannot be applied as a block: it is a [Block] of assembly 'PlainBlocks', which was built without the GraphCompiler generator", diagnostic.GetMessage());
        Assert.Contains("build 'PlainBlocks' with the GraphCompiler generator", diagnostic.GetMessage());
    }

    [Fact]
    public void AnUndeclaredTypeIsGC0009SayingItIsNotDeclared()
    {
        var (result, _) = GeneratorHarness.Run(Enc(heads: 4));

        var diagnostic = Assert.Single(GeneratorHarness.GeneratorDiagnostics(result));
        Assert.Equal("GC0009", diagnostic.Id);
        Assert.Equal("Layer", GeneratorHarness.LocatedText(diagnostic));
        Assert.Contains("no such type is declared in this project or its references", diagnostic.GetMessage());
    }

    [Theory]
    [InlineData(99, "1:x", "its manifest has format version 99, this generator reads version 1")]
    [InlineData(1, "not a manifest", "its manifest cannot be decoded")]
    [InlineData(1, "5:Layer 10:TestModels", "its manifest cannot be decoded")]
    public void AnUnreadableManifestIsGC0012AtTheUsersLine(int version, string payload, string problem)
    {
        var library = GeneratorHarness.Library("OddBlocks", withGenerator: false, ("Layer.cs",
            Header + $"[assembly: DeclarationManifest(\"TestModels.Layer\", {version}, \"{payload}\")]\n\nnamespace TestModels;\n\n" + LayerBody));
        var (result, _) = RunWith(library, ("Enc.cs", Enc(heads: 4)));

        var diagnostic = SingleGeneratorError(result, "GC0012");
        Assert.Equal("new Layer { Hidden = Hidden, Heads = 4 }", GeneratorHarness.LocatedText(diagnostic));
        Assert.Contains($"'TestModels.Layer' from assembly 'OddBlocks' cannot be used: {problem}", diagnostic.GetMessage());
        Assert.Contains("rebuild 'OddBlocks' with the same GraphCompiler version as this project", diagnostic.GetMessage());
    }

    [Fact]
    public void AConfigurationOnlyModelLowersLikeTheModelWrittenOut()
    {
        var (configured, configuredOutput) = GeneratorHarness.Run(GeneratorHarness.Compilation(("Layer.cs", LayerBlock), ("TinyBase.cs", TinyBase), ("Tiny3.cs", Tiny3)));
        var (written, _) = GeneratorHarness.Run(GeneratorHarness.Compilation(("Layer.cs", LayerBlock), ("Tiny3.cs", Tiny3Written)));

        Assert.Empty(GeneratorHarness.GeneratorDiagnostics(configured));
        Assert.Empty(GeneratorHarness.CompileErrors(configuredOutput));
        var module = Assert.Single(GeneratorHarness.ModuleSources(configured.Results.Single()));
        Assert.Equal("TestModels.Tiny3Module.g.cs", module.HintName); // the abstract base gets no module
        Assert.Equal(LoweredWithoutLocations(written, "Tiny3"), LoweredWithoutLocations(configured, "Tiny3"));
        Assert.Contains("classifier.weight", LoweredWithoutLocations(configured, "Tiny3"));
        Assert.Contains("f32[3,16]", LoweredWithoutLocations(configured, "Tiny3"));
    }

    [Fact]
    public void AConfigurationOnlyModelCanDeriveFromAnother()
    {
        var tiny4 = GeneratorHarness.Usings + """
            [Model("tiny4")]
            [StaticShapes(Batch = 1, SeqLens = new[] { 8 })]
            public partial class Tiny4 : Tiny3
            {
                public Tiny4() { Classes = 4; }
            }
            """;
        var (result, output) = GeneratorHarness.Run(GeneratorHarness.Compilation(("Layer.cs", LayerBlock), ("TinyBase.cs", TinyBase), ("Tiny3.cs", Tiny3), ("Tiny4.cs", tiny4)));

        Assert.Empty(GeneratorHarness.GeneratorDiagnostics(result));
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        var lowered = LoweredWithoutLocations(result, "Tiny4");
        Assert.Contains("f32[4,16]", lowered); // Classes from Tiny4, Hidden from Tiny3
    }

    [Fact]
    public void AConfigurationOnlyModelOfAReferencedBaseCompilesToTheSameModuleAsALocalOne()
    {
        var library = GeneratorHarness.Library("Zoo", withGenerator: true, ("Layer.cs", LayerBlock), ("TinyBase.cs", TinyBase));
        var (consumer, output) = RunWith(library, ("Tiny3.cs", Tiny3));
        var (local, _) = GeneratorHarness.Run(GeneratorHarness.Compilation(("Layer.cs", LayerBlock), ("TinyBase.cs", TinyBase), ("Tiny3.cs", Tiny3)));

        Assert.Empty(GeneratorHarness.GeneratorDiagnostics(consumer));
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        Assert.Equal(Modules(local), Modules(consumer));
    }

    [Fact]
    public void AnErrorInAReferencedBasesForwardIsReportedOnTheConfiguredModel()
    {
        var library = GeneratorHarness.Library("Zoo", withGenerator: true, ("Layer.cs", LayerBlock), ("TinyBase.cs", TinyBase));
        var (result, _) = RunWith(library, ("Tiny3.cs", Configured("Hidden = 16;\n        Heads = 5;")));

        var diagnostic = SingleGeneratorError(result, "GC0006");
        Assert.Equal("Tiny3", GeneratorHarness.LocatedText(diagnostic));
        Assert.Contains("hidden size 16 is not divisible by 5 heads", diagnostic.GetMessage());
        Assert.Contains("of assembly 'Zoo'", diagnostic.GetMessage());
        Assert.Contains("model 'tiny3'", diagnostic.GetMessage());
    }

    [Fact]
    public void AnErrorInALocalBasesForwardAlsoPointsAtTheConfiguredModel()
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Compilation(("Layer.cs", LayerBlock), ("TinyBase.cs", TinyBase), ("Tiny3.cs", Configured("Hidden = 16;\n        Heads = 5;"))));

        var diagnostic = SingleGeneratorError(result, "GC0006");
        Assert.Equal("Attention(q, q, q, mask, Heads, 0.0)", GeneratorHarness.LocatedText(diagnostic));
        var located = diagnostic.AdditionalLocations.Select(l => l.SourceTree!.GetText().ToString(l.SourceSpan)).ToList();
        Assert.Equal(new[] { "new Layer { Hidden = Hidden, Heads = Heads }", "Tiny3" }, located);
        Assert.Contains("in model 'tiny3', which configures 'TinyBase'", diagnostic.GetMessage());
    }

    [Fact]
    public void AnUnreadableBaseModelManifestIsGC0012OnTheBase()
    {
        var library = GeneratorHarness.Library("OddZoo", withGenerator: false, ("Layer.cs", LayerBlock), ("TinyBase.cs",
            Header + "[assembly: DeclarationManifest(\"TestModels.TinyBase\", 2, \"\")]\n\nnamespace TestModels;\n\n" + TinyBase.Substring(GeneratorHarness.Usings.Length)));
        var (result, _) = RunWith(library, ("Tiny3.cs", Tiny3));

        var diagnostic = SingleGeneratorError(result, "GC0012");
        Assert.Equal("TinyBase", GeneratorHarness.LocatedText(diagnostic));
        Assert.Contains("'TinyBase' from assembly 'OddZoo' cannot be used: its manifest has format version 2", diagnostic.GetMessage());
    }

    /// <summary>The user: MiniLM with three labels, and BERT's encoder with a head of their own, from the zoo
    /// assembly (ModelDefs, built with the generator and referenced by these tests).</summary>
    [Fact]
    public void AUserProjectReusesTheZoosBaseModelAndBlocks()
    {
        var source = GeneratorHarness.Usings + """
            [Model("minilm_3labels")]
            [StaticShapes(Batch = 2, SeqLens = new[] { 16 })]
            public partial class MiniLm3 : GraphCompiler.ModelDefs.BertClassifier
            {
                public MiniLm3() { Layers = 1; Hidden = 384; Heads = 12; Ffn = 1536; Classes = 3; }
            }

            [Model("encoder_with_my_head")]
            [StaticShapes(Batch = 2, SeqLens = new[] { 16 })]
            public partial class MyHead
            {
                [Forward]
                public Expr Forward(
                    [Input(DType.Int64, "batch", "seq")] Expr inputIds,
                    [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
                    [Input(DType.Int64, "batch")] Expr validLength)
                {
                    var sequence = Apply("", new GraphCompiler.ModelDefs.BertEncoder { Layers = 1, Hidden = 64, Heads = 4, Ffn = 128 }, inputIds, tokenTypes, validLength);
                    return Linear(Select(sequence, 1, 0), 64, 5, "my_head");
                }
            }
            """;
        var (result, output) = GeneratorHarness.Run(source);

        Assert.Empty(GeneratorHarness.GeneratorDiagnostics(result));
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        Assert.NotNull(output.GetTypeByMetadataName("TestModels.MiniLm3Module"));
        // Buckets and [Quantize] are the derived model's own: BertClassifier's derived classifiers each say [Quantize].
        Assert.Null(output.GetTypeByMetadataName("TestModels.MiniLm3Int8Module"));
        Assert.NotNull(output.GetTypeByMetadataName("TestModels.MyHeadModule"));
    }

    [Theory]
    [InlineData("Hidden = 16;\n        Widht = 3;", "Widht", "GC0013", "'Widht' is not a [Hyper] of 'TinyBase'; its hyper-parameters are: Classes, Heads, Hidden")]
    [InlineData("Hidden = System.Environment.ProcessorCount;", "System.Environment.ProcessorCount", "GC0014", "is not a compile-time constant")]
    [InlineData("Hidden = 16;\n        Hidden = 8;", "Hidden = 8", "GC0014", "'Hidden' is set twice")]
    [InlineData("Hidden = 16;\n        System.Console.WriteLine();", "System.Console.WriteLine()", "GC0014", "may only set hyper-parameters of the base model to constants")]
    public void MalformedConfigurationIsReportedOnItsSyntax(string constructor, string located, string id, string message)
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Compilation(("Layer.cs", LayerBlock), ("TinyBase.cs", TinyBase), ("Tiny3.cs", Configured(constructor))));

        var diagnostic = SingleGeneratorError(result, id);
        Assert.Equal(located, GeneratorHarness.LocatedText(diagnostic));
        Assert.Contains(message, diagnostic.GetMessage());
    }

    [Fact]
    public void ABaseThatIsNotAModelIsGC0014()
    {
        var helper = GeneratorHarness.Usings + "public class Settings\n{\n    public int Hidden;\n}\n";
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Compilation(("Settings.cs", helper), ("Tiny3.cs", Configured("Hidden = 16;", baseName: "Settings"))));

        var diagnostic = SingleGeneratorError(result, "GC0014");
        Assert.Equal("Settings", GeneratorHarness.LocatedText(diagnostic));
        Assert.Contains("its base class 'Settings' is not a [Model]", diagnostic.GetMessage());
    }

    [Fact]
    public void AConfigurationOnlyModelCannotDeclareHypers()
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Compilation(("Layer.cs", LayerBlock), ("TinyBase.cs", TinyBase),
            ("Tiny3.cs", Configured("Hidden = 16;", members: "[Hyper] public int Extra = 1;"))));

        var diagnostic = SingleGeneratorError(result, "GC0014");
        Assert.Equal("Extra", GeneratorHarness.LocatedText(diagnostic));
        Assert.Contains("declare 'Extra' in 'TinyBase'", diagnostic.GetMessage());
    }

    [Fact]
    public void ABaseModelOfAnAssemblyBuiltWithoutTheGeneratorIsGC0014()
    {
        var library = GeneratorHarness.Library("PlainZoo", withGenerator: false, ("Layer.cs", LayerBlock), ("TinyBase.cs", TinyBase));
        var (result, _) = RunWith(library, ("Tiny3.cs", Tiny3));

        var diagnostic = SingleGeneratorError(result, "GC0014");
        Assert.Equal("TinyBase", GeneratorHarness.LocatedText(diagnostic));
        Assert.Contains("its base model 'TinyBase' has no GraphCompiler manifest", diagnostic.GetMessage());
    }

    [Fact]
    public void AnEditThatChangesNoDeclarationLeavesTheManifestStepsCached()
    {
        var library = GeneratorHarness.Library("Blocks", withGenerator: true, ("EncoderLayer.cs", TestDeclarations.EncoderLayerBlock));
        var compilation = GeneratorHarness.Compilation(("TinyEncoder.cs", TestDeclarations.TinyEncoder), ("Helpers.cs", TestDeclarations.Unrelated)).AddReferences(library);
        var driver = GeneratorHarness.Driver(trackSteps: true).RunGenerators(compilation);
        var first = driver.GetRunResult().Results.Single();
        Assert.Empty(first.Diagnostics);
        var declarations = (ReferencedDeclarations)first.TrackedSteps[TrackingNames.ReferencedDeclarations].Single().Outputs.Single().Value;
        Assert.Contains(declarations.Declarations, d => d.FullName == "TestModels.EncoderLayer");

        var helpers = compilation.SyntaxTrees.Single(t => t.FilePath == "Helpers.cs");
        var edited = compilation.ReplaceSyntaxTree(helpers, CSharpSyntaxTree.ParseText(TestDeclarations.Unrelated.Replace("2 * x", "x + x"), GeneratorHarness.ParseOptions, path: "Helpers.cs"));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        foreach (var (name, steps) in result.TrackedSteps.Where(s => typeof(TrackingNames).GetField(s.Key) is not null))
        {
            Assert.All(steps.SelectMany(s => s.Outputs), o => Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"step {name} output was {o.Reason}"));
        }

        Assert.Equal(IncrementalStepRunReason.Unchanged, result.TrackedSteps[TrackingNames.ReferencedManifests].Single().Outputs.Single().Reason);
    }

    [Fact]
    public void AChangedReferencedBlockRecompilesTheModel()
    {
        var library = GeneratorHarness.Library("Blocks", withGenerator: true, ("EncoderLayer.cs", TestDeclarations.EncoderLayerBlock));
        var changed = GeneratorHarness.Library("Blocks", withGenerator: true, ("EncoderLayer.cs", TestDeclarations.EncoderLayerBlock.Replace("Gelu(Linear(h", "Tanh(Linear(h")));
        var compilation = GeneratorHarness.Compilation(("TinyEncoder.cs", TestDeclarations.TinyEncoder)).AddReferences(library);
        var driver = GeneratorHarness.Driver(trackSteps: true).RunGenerators(compilation);

        var result = driver.RunGenerators(compilation.ReplaceReference(library, changed)).GetRunResult().Results.Single();

        Assert.Equal(IncrementalStepRunReason.Modified, result.TrackedSteps[TrackingNames.ReferencedManifests].Single().Outputs.Single().Reason);
        Assert.Equal(new[] { IncrementalStepRunReason.Modified }, result.TrackedSteps[TrackingNames.Compiled].SelectMany(s => s.Outputs).Select(o => o.Reason));
        Assert.Contains("Tanh", GeneratorHarness.ModuleSources(result).Single().SourceText.ToString());
    }

    /// <summary>The named model's lowered IR as the pipeline compiles it, without the source comments (which name the
    /// declaration a statement is written in).</summary>
    private static string LoweredWithoutLocations(GeneratorDriverRunResult result, string model)
    {
        var run = result.Results.Single();
        var resolved = run.TrackedSteps[TrackingNames.ResolvedModels].SelectMany(s => s.Outputs).Select(o => (ResolvedModel)o.Value).Single(r => r.Spec.Name == model);
        var library = (BlockLibrary)run.TrackedSteps[TrackingNames.AllBlocks].Single().Outputs.Single().Value;
        var (lowered, _) = ModelCompiler.CompileGraph(resolved.Spec, library.Blocks);
        return IrText.Print(lowered with { Nodes = lowered.Nodes.Select(n => n with { Source = "" }).ToEquatableArray() });
    }
}
