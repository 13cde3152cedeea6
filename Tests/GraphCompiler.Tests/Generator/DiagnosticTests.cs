using GraphCompiler.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Xunit;

namespace GraphCompiler.Tests.Generator;

/// <summary>One or more broken declarations per GC diagnostic: the ID, the exact text the squiggle covers, a message
/// that says what to change, no generated source for the broken model, and no exception out of the generator.</summary>
public class DiagnosticTests
{
    /// <summary>A valid MLP whose Forward body is replaced per test.</summary>
    private static string Mlp(string body, string shapes = "Batch = 4, SeqLens = new[] { 8 }", string members = "") => $$"""
        [Model("mlp")]
        [StaticShapes({{shapes}})]
        public partial class Mlp
        {
            {{members}}

            [Forward]
            public Expr Forward([Input(DType.Float32, "batch", "seq", "16")] Expr x)
            {
                {{body}}
            }
        }
        """;

    /// <summary>An encoder layer block and a model applying it, with knobs for the constraint tests.</summary>
    private static string Encoder(int heads = 4, int maxPositions = 16, string shapes = "Batch = 2, SeqLens = new[] { 8, 16 }") => $$"""
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

        [Model("enc")]
        [StaticShapes({{shapes}})]
        public partial class Enc
        {
            [Hyper] public int Hidden = 32;

            [Forward]
            public Expr Forward([Input(DType.Int64, "batch", "seq")] Expr ids, [Input(DType.Int64, "batch")] Expr lengths)
            {
                var x = Embedding(ids, 100, Hidden, "words") + PositionEmbedding(ids, {{maxPositions}}, Hidden, "positions");
                var mask = LengthMask(lengths, ids);
                return Repeat(2, "layer", new Layer { Hidden = Hidden, Heads = {{heads}} }, x, mask);
            }
        }
        """;

    [Fact]
    public void ValidDeclarationsOfTheseTestsCompile()
    {
        // The broken cases below are one edit away from these; they must be clean so each test isolates its error.
        foreach (var source in new[] { Mlp("return Linear(x, 16, 4, \"fc\");"), Encoder() })
        {
            var (result, output) = GeneratorHarness.Run(GeneratorHarness.Usings + source);
            Assert.Empty(GeneratorHarness.GeneratorDiagnostics(result));
            Assert.Empty(GeneratorHarness.CompileErrors(output));
            Assert.Single(GeneratorHarness.ModuleTrees(result));
        }
    }

    [Theory]
    [InlineData("var h = Linear(x, 16, 4, \"fc\");\nif (true) { h = Gelu(h); }\nreturn h;", "if (true) { h = Gelu(h); }", "only 'var x = ...;'")]
    [InlineData("var h = Linear(x, 16, 4, \"fc\");\nfor (var i = 0; i < 2; i++) { h = Gelu(h); }\nreturn h;", "for (var i = 0; i < 2; i++) { h = Gelu(h); }", "only 'var x = ...;'")]
    [InlineData("var h = Linear(x, 16, 4, \"fc\");\nwhile (false) { }\nreturn h;", "while (false) { }", "only 'var x = ...;'")]
    [InlineData("var n = System.Math.Max(16, 8);\nreturn Linear(x, 16, n, \"fc\");", "System.Math.Max(16, 8)", "only GraphCompiler.Ops")]
    [InlineData("var h = Linear(x, 16, 4, \"fc\");\nSystem.Console.WriteLine(\"hi\");\nreturn h;", "System.Console.WriteLine(\"hi\");", "only 'var x = ...;'")]
    [InlineData("var h = Linear(x, 16, 4, \"fc\");\nreturn h ?? x;", "h ?? x", "use locals, calls to GraphCompiler.Ops")]
    [InlineData("const int n = 4;\nreturn Linear(x, 16, n, \"fc\");", "const int n = 4;", "only 'var x = ...;'")]
    public void GC0001_ConstructOutsideTheForwardLanguage(string body, string located, string advice)
    {
        var source = Mlp(body);
        var diagnostic = SingleError(source, "GC0001");
        AssertAt(diagnostic, source, located);
        Assert.Contains("is not part of the Forward language", diagnostic.GetMessage());
        Assert.Contains(advice, diagnostic.GetMessage());
    }

    [Theory]
    [InlineData("return Relu(Linear(x, 16, 4, \"fc\"));", "Relu", "'Relu' is not a GraphCompiler op")]
    [InlineData("return Ops.Swish(x);", "Ops.Swish", "'Swish' is not a GraphCompiler op")]
    public void GC0002_UnknownOp(string body, string located, string message)
    {
        var source = Mlp(body);
        var diagnostic = SingleError(source, "GC0002", allowCompilerErrors: true);
        AssertAt(diagnostic, source, located);
        Assert.Contains(message, diagnostic.GetMessage());
        Assert.Contains("Linear", diagnostic.GetMessage()); // lists the ops that exist
    }

    [Theory]
    [InlineData("return Linear(x, 8, 4, \"fc\");", "Linear(x, 8, 4, \"fc\")", "declares 8 in-features but its input f32[batch,seq,16] has last dimension 16; make inFeatures 16")]
    [InlineData("return LayerNorm(x, 32, 1e-5, \"norm\");", "LayerNorm(x, 32, 1e-5, \"norm\")", "normalizes 32 features but its input")]
    [InlineData("return RmsNorm(x, 32, 1e-5, \"norm\");", "RmsNorm(x, 32, 1e-5, \"norm\")", "RmsNorm 'norm'")]
    [InlineData("var h = Linear(x, 16, 4, \"fc\");\nreturn h + x;", "h + x", "do not broadcast")]
    [InlineData("return MatMul(x, x);", "MatMul(x, x)", "inner dimensions differ")]
    [InlineData("return Reshape(x, Batch, 3, -1);", "Reshape(x, Batch, 3, -1)", "cannot")]
    [InlineData("return Transpose(x, 0, 5);", "Transpose(x, 0, 5)", "dimension 5 is out of range for a rank-3 tensor")]
    public void GC0003_ShapeMismatch(string body, string located, string message)
    {
        var source = Mlp(body);
        var diagnostic = SingleError(source, "GC0003");
        AssertAt(diagnostic, source, located);
        Assert.Contains(message, diagnostic.GetMessage());
    }

    [Fact]
    public void GC0004_BlockHyperWithoutDefaultNotSetWhereApplied()
    {
        var source = """
            [Block]
            public partial class Ffn
            {
                [Hyper] public int Hidden;

                [Forward]
                public Expr Forward(Expr x) => Gelu(Linear(x, Hidden, Hidden, "fc"));
            }

            """ + Mlp("return Apply(\"ffn\", new Ffn { }, x);");
        var diagnostic = SingleError(source, "GC0004");
        AssertAt(diagnostic, source, "new Ffn { }");
        Assert.Contains("Hyper-parameter 'Hidden' of 'Ffn' has no value", diagnostic.GetMessage());
        Assert.Contains("set it where the block is applied, e.g. new Ffn { Hidden = ... }", diagnostic.GetMessage());
    }

    [Fact]
    public void GC0004_ModelHyperWithoutDefault()
    {
        var source = Mlp("return Linear(x, 16, Out, \"fc\");", members: "[Hyper] public int Out;");
        var diagnostic = SingleError(source, "GC0004");
        AssertAt(diagnostic, source, "Out", occurrence: "Out;");
        Assert.Contains("Hyper-parameter 'Out' of 'Mlp' has no value", diagnostic.GetMessage());
        Assert.Contains("need defaults, e.g. [Hyper] public int Out = ...;", diagnostic.GetMessage());
        Assert.DoesNotContain("block", diagnostic.GetMessage()); // a model is not applied anywhere
    }

    [Theory]
    [InlineData("var a = Linear(x, 16, 16, \"fc\");\nreturn Linear(a, 16, 4, \"fc\");", "Linear(a, 16, 4, \"fc\")", "fc.weight")]
    [InlineData("var w = Param(\"w\", Init.Zeros, 16);\nvar v = Param(\"w\", Init.Ones, 16);\nreturn x * w + v;", "Param(\"w\", Init.Ones, 16)", "w")]
    [InlineData("var a = LayerNorm(x, 16, 1e-5, \"ln\");\nreturn Linear(a, 16, 4, \"ln\");", "Linear(a, 16, 4, \"ln\")", "ln.weight")]
    public void GC0005_DuplicateParameterName(string body, string located, string parameter)
    {
        var source = Mlp(body);
        var diagnostic = SingleError(source, "GC0005");
        AssertAt(diagnostic, source, located);
        Assert.Contains($"Parameter '{parameter}' is declared twice in model 'mlp'", diagnostic.GetMessage());
        Assert.Contains("its own name or prefix", diagnostic.GetMessage());
    }

    [Fact]
    public void GC0005_SameBlockAppliedTwiceUnderOnePrefix()
    {
        // Two Applys of one block under the same prefix collide on every parameter of the block.
        var source = """
            [Block]
            public partial class Ffn
            {
                [Forward]
                public Expr Forward(Expr x) => Linear(x, 16, 16, "fc");
            }

            """ + Mlp("var a = Apply(\"ffn\", new Ffn(), x);\nreturn Apply(\"ffn\", new Ffn(), a);");
        var diagnostic = SingleError(source, "GC0005");
        AssertAt(diagnostic, source, "Linear(x, 16, 16, \"fc\")");
        Assert.Contains("Parameter 'ffn.fc.weight' is declared twice", diagnostic.GetMessage());
    }

    [Fact]
    public void GC0006_HiddenNotDivisibleByHeads()
    {
        var source = Encoder(heads: 5);
        var diagnostic = SingleError(source, "GC0006");
        AssertAt(diagnostic, source, "Attention(q, q, q, mask, Heads, 0.0)");
        Assert.Contains("hidden size 32 is not divisible by 5 heads", diagnostic.GetMessage());
        Assert.Contains("choose Heads dividing Hidden", diagnostic.GetMessage());
    }

    [Fact]
    public void GC0006_SeqLenBucketBeyondMaxPositions()
    {
        var source = Encoder(maxPositions: 12);
        var diagnostic = SingleError(source, "GC0006");
        AssertAt(diagnostic, source, "StaticShapes(Batch = 2, SeqLens = new[] { 8, 16 })");
        Assert.Contains("sequence-length bucket 16 exceeds the 12 positions of 'positions'", diagnostic.GetMessage());
        Assert.Contains("drop it from [StaticShapes] SeqLens or raise maxPositions", diagnostic.GetMessage());
    }

    [Theory]
    [InlineData("Batch = 0, SeqLens = new[] { 8 }", "Batch must be positive, got 0")]
    [InlineData("Batch = -3, SeqLens = new[] { 8 }", "Batch must be positive, got -3")]
    [InlineData("Batch = 4, SeqLens = new[] { 8, 0 }", "SeqLens must list one or more positive sequence lengths")]
    [InlineData("Batch = 4, SeqLens = new int[0]", "SeqLens must list one or more positive sequence lengths")]
    [InlineData("Batch = 4, SeqLens = new[] { 8, 8 }", "SeqLens has duplicates: [8, 8]")]
    public void GC0006_BadStaticShapes(string shapes, string message)
    {
        var source = Mlp("return Linear(x, 16, 4, \"fc\");", shapes);
        var diagnostic = SingleError(source, "GC0006");
        AssertAt(diagnostic, source, $"StaticShapes({shapes})");
        Assert.Contains(message, diagnostic.GetMessage());
    }

    [Fact]
    public void GC0006_DuplicateBucketAcrossStaticShapes()
    {
        var source = Mlp("return Linear(x, 16, 4, \"fc\");", "Batch = 4, SeqLens = new[] { 8, 16 })]\n[StaticShapes(Batch = 4, SeqLens = new[] { 16 }");
        var diagnostic = SingleError(source, "GC0006");
        AssertAt(diagnostic, source, "StaticShapes(Batch = 4, SeqLens = new[] { 16 })");
        Assert.Contains("bucket 4×16 is already declared by another [StaticShapes]", diagnostic.GetMessage());
    }

    [Fact]
    public void SeveralStaticShapesWithDistinctBucketsCompile()
    {
        var source = Mlp("return Linear(x, 16, 4, \"fc\");", "Batch = 4, SeqLens = new[] { 8, 16 })]\n[StaticShapes(Batch = 1, SeqLens = new[] { 16 }");
        var (result, output) = GeneratorHarness.Run(GeneratorHarness.Usings + source);
        Assert.Empty(GeneratorHarness.GeneratorDiagnostics(result));
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        Assert.Contains("(batch, seq) is (4, 8) or (4, 16) or (1, 16);", Assert.Single(GeneratorHarness.ModuleTrees(result)).ToString());
    }

    [Theory]
    [InlineData("return Dropout(Linear(x, 16, 4, \"fc\"), 1.5);", "1.5", "dropout probability must be in [0, 1), got 1.5")]
    [InlineData("return LayerNorm(x, 16, 0.0, \"norm\");", "0.0", "needs eps > 0")]
    [InlineData("return RmsNorm(x, 16, -1e-6, \"norm\");", "-1e-6", "RmsNorm 'norm' needs eps > 0")]
    [InlineData("return Linear(x, 16, 0, \"fc\");", "Linear(x, 16, 0, \"fc\")", "'outFeatures' must be positive, got 0")]
    [InlineData("return Linear(x, 16, 4 / 0, \"fc\");", "4 / 0", "division by zero")]
    public void GC0006_OpArgumentConstraint(string body, string located, string message)
    {
        var source = Mlp(body);
        var diagnostic = SingleError(source, "GC0006", allowCompilerErrors: body.Contains("/ 0"));
        AssertAt(diagnostic, source, located);
        Assert.Contains(message, diagnostic.GetMessage());
    }

    [Fact]
    public void GC0006_RepeatCountBelowOne()
    {
        var source = Encoder().Replace("Repeat(2,", "Repeat(0,");
        var diagnostic = SingleError(source, "GC0006");
        AssertAt(diagnostic, source, "0", occurrence: "Repeat(0");
        Assert.Contains("Repeat needs a count ≥ 1, got 0", diagnostic.GetMessage());
    }

    [Fact]
    public void GC0006_RepeatCountTooLargeToUnroll()
    {
        // Found by fuzzing: Repeat(int.MaxValue, ...) unrolled until memory ran out, hanging the generator.
        var source = Encoder().Replace("Repeat(2,", "Repeat(2147483647,");
        var diagnostic = SingleError(source, "GC0006");
        AssertAt(diagnostic, source, "2147483647");
        Assert.Contains("Repeat count 2147483647 unrolls to more than 100000 graph nodes", diagnostic.GetMessage());
    }

    [Fact]
    public void GC0006_IntArgumentOverflows()
    {
        // A product of hyper-parameters is exact in the lowerer but must still fit the int the op takes.
        var source = Mlp("return Linear(x, 16, Big * Big, \"fc\");", members: "[Hyper] public int Big = 100000;");
        var diagnostic = SingleError(source, "GC0006");
        AssertAt(diagnostic, source, "Big * Big");
        Assert.Contains("Linear(outFeatures) is 10000000000, which overflows an int", diagnostic.GetMessage());
    }

    [Fact]
    public void GC0007_ModelWithoutForward()
    {
        var source = """
            [Model("empty")]
            [StaticShapes(Batch = 1, SeqLens = new[] { 4 })]
            public partial class Empty
            {
            }
            """;
        var diagnostic = SingleError(source, "GC0007");
        AssertAt(diagnostic, source, "Empty", occurrence: "class Empty");
        Assert.Contains("'Empty' cannot be compiled: it has no [Forward] method", diagnostic.GetMessage());
    }

    [Fact]
    public void GC0007_ModelWithoutStaticShapes()
    {
        var source = Mlp("return x;").Replace("[StaticShapes(Batch = 4, SeqLens = new[] { 8 })]\n", "");
        var diagnostic = SingleError(source, "GC0007");
        AssertAt(diagnostic, source, "Model(\"mlp\")");
        Assert.Contains("a [Model] needs [StaticShapes(Batch = ..., SeqLens = new[] { ... })]", diagnostic.GetMessage());
    }

    [Theory]
    [InlineData("[Hyper] public string Act = \"gelu\";", "Act", "a [Hyper] must be an int, float, double or bool")]
    [InlineData("[Hyper] public int Width = System.Environment.ProcessorCount;", "System.Environment.ProcessorCount", "a hyper-parameter default must be a compile-time constant")]
    public void GC0007_BadHyper(string member, string located, string message)
    {
        var source = Mlp("return x;", members: member);
        var diagnostic = SingleError(source, "GC0007");
        AssertAt(diagnostic, source, located);
        Assert.Contains(message, diagnostic.GetMessage());
    }

    [Fact]
    public void GC0007_ForwardNotReturningExpr()
    {
        var source = Mlp("var h = Linear(x, 16, 4, \"fc\");", "Batch = 4, SeqLens = new[] { 8 }").Replace("public Expr Forward", "public void Forward");
        var diagnostic = SingleError(source, "GC0007");
        AssertAt(diagnostic, source, "void");
        Assert.Contains("Forward must return Expr or a tuple of Expr", diagnostic.GetMessage());
    }

    [Fact]
    public void GC0007_ModelApplyingABrokenBlock()
    {
        var source = """
            [Block]
            public partial class Bad
            {
                [Forward]
                public Expr Forward(Expr x)
                {
                    while (true) { }
                }
            }

            """ + Mlp("return Apply(\"bad\", new Bad(), x);");
        var (result, _) = RunClean(source);
        var diagnostics = GeneratorHarness.GeneratorDiagnostics(result);
        AssertAt(Assert.Single(diagnostics, d => d.Id == "GC0001"), source, "while (true) { }");
        var atModel = Assert.Single(diagnostics, d => d.Id == "GC0007");
        AssertAt(atModel, source, "Mlp", occurrence: "class Mlp");
        Assert.Contains("block 'Bad' it applies has errors", atModel.GetMessage());
    }

    [Fact]
    public void GC0007_NestedDeclaration()
    {
        var source = """
            public static class Outer
            {
            """ + Mlp("return x;") + "\n}";
        var diagnostic = SingleError(source, "GC0007");
        AssertAt(diagnostic, source, "Mlp", occurrence: "class Mlp");
        Assert.Contains("declare it as a top-level class, not nested in another type", diagnostic.GetMessage());
    }

    [Fact]
    public void GC0008_ModelInputWithoutInputAttribute()
    {
        var source = Mlp("return x;").Replace("[Input(DType.Float32, \"batch\", \"seq\", \"16\")] Expr x", "Expr x");
        var diagnostic = SingleError(source, "GC0008");
        AssertAt(diagnostic, source, "x", occurrence: "x)");
        Assert.Contains("Input 'x' of model 'Mlp'", diagnostic.GetMessage());
        Assert.Contains("needs [Input(DType...", diagnostic.GetMessage());
    }

    [Theory]
    [InlineData("\"width\"", "dimension 'width' is not \"batch\", \"seq\", a positive integer or an int hyper-parameter of the model")]
    [InlineData("\"0\"", "dimension '0' is not")]
    [InlineData("\"-16\"", "dimension '-16' is not")]
    public void GC0008_BadInputDimension(string dim, string message)
    {
        var source = Mlp("return x;").Replace("\"seq\", \"16\"", "\"seq\", " + dim);
        var diagnostic = SingleError(source, "GC0008");
        AssertAt(diagnostic, source, "x", occurrence: "x)");
        Assert.Contains(message, diagnostic.GetMessage());
    }

    [Fact]
    public void GC0008_NoInputCarriesBatch()
    {
        // Found by fuzzing: the emitter needs an input to read the batch size from and crashed (GC9999) without one.
        var source = Mlp("return Linear(x, 16, 4, \"fc\");").Replace("\"batch\", \"seq\", \"16\"", "\"seq\", \"16\"");
        var diagnostic = SingleError(source, "GC0008");
        AssertAt(diagnostic, source, "x", occurrence: "x)");
        Assert.Contains("no input of the model has a \"batch\" dimension", diagnostic.GetMessage());
        Assert.Contains("declare one", diagnostic.GetMessage());
    }

    [Fact]
    public void GC0006_SeveralSeqLensButNoSeqInput()
    {
        // Found by fuzzing: buckets that differ only in seq cannot be told apart, and the emitted switch did not compile.
        var source = Mlp("return Linear(x, 16, 4, \"fc\");", "Batch = 4, SeqLens = new[] { 8, 16 }").Replace("\"batch\", \"seq\", \"16\"", "\"batch\", \"16\"");
        var diagnostic = SingleError(source, "GC0006");
        AssertAt(diagnostic, source, "StaticShapes(Batch = 4, SeqLens = new[] { 8, 16 })");
        Assert.Contains("lists 2 sequence lengths but no input has a \"seq\" dimension", diagnostic.GetMessage());
        Assert.Contains("list a single SeqLens", diagnostic.GetMessage());
    }

    [Fact]
    public void NoSeqInputWithOneSeqLenStillCompiles()
    {
        // The check above must not reject what the emitter handles: one bucket needs no seq dimension.
        var source = Mlp("return Linear(x, 16, 4, \"fc\");").Replace("\"batch\", \"seq\", \"16\"", "\"batch\", \"16\"");
        var (result, output) = GeneratorHarness.Run(GeneratorHarness.Usings + source);
        Assert.Empty(GeneratorHarness.GeneratorDiagnostics(result));
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        Assert.Single(GeneratorHarness.ModuleTrees(result));
    }

    [Fact]
    public void GC0009_UnknownBlock()
    {
        var source = """
            public class NotABlock
            {
                public int Hidden;
            }

            """ + Mlp("return Apply(\"b\", new NotABlock { Hidden = 16 }, x);");
        var diagnostic = SingleError(source, "GC0009");
        AssertAt(diagnostic, source, "NotABlock", occurrence: "new NotABlock");
        Assert.Contains("'NotABlock' cannot be applied as a block: its class is not marked [Block]; mark it [Block]", diagnostic.GetMessage());
    }

    [Theory]
    [InlineData("return Linear(y, 16, 4, \"fc\");", "y", "(y", "'y' is not defined: use a local, a Forward input or a [Hyper] of 'Mlp'", true)]
    [InlineData("var h = Gelu(x);\nreturn Apply(\"p\", h, x);", "h", "h, x)", "Apply(block) got a tensor", false)]
    public void GC0010_UndefinedOrMistypedValue(string body, string located, string anchor, string message, bool compilerAlsoErrs)
    {
        var source = Mlp(body, members: "[Hyper] public int Use = 1;");
        var diagnostic = SingleError(source, "GC0010", allowCompilerErrors: compilerAlsoErrs);
        AssertAt(diagnostic, source, located, occurrence: anchor);
        Assert.Contains(message, diagnostic.GetMessage());
    }

    [Fact]
    public void GC0010_BlockGivenWrongNumberOfInputs()
    {
        var source = """
            [Block]
            public partial class Two
            {
                [Forward]
                public Expr Forward(Expr a, Expr b) => a + b;
            }

            """ + Mlp("return Apply(\"two\", new Two(), x);");
        var diagnostic = SingleError(source, "GC0010");
        AssertAt(diagnostic, source, "Apply(\"two\", new Two(), x)");
        Assert.Contains("block 'Two' takes 2 inputs (a, b) but is given 1", diagnostic.GetMessage());
    }

    [Fact]
    public void GC0013_InitializerSetsANonHyper()
    {
        var source = """
            [Block]
            public partial class Ffn
            {
                [Hyper] public int Hidden = 16;
                public int Width = 16;

                [Forward]
                public Expr Forward(Expr x) => Linear(x, Hidden, Hidden, "fc");
            }

            """ + Mlp("return Apply(\"ffn\", new Ffn { Width = 8 }, x);");
        var diagnostic = SingleError(source, "GC0013");
        AssertAt(diagnostic, source, "8", occurrence: "Width = 8");
        Assert.Contains("'Width' is not a [Hyper] of 'Ffn'; its hyper-parameters are: Hidden", diagnostic.GetMessage());
    }

    [Theory]
    [InlineData("return Linear(x, 16);", "Linear(x, 16)", "Ops.Linear(Expr x, int inFeatures, int outFeatures, string name, bool bias = true)")]
    [InlineData("return Linear(x, 16.0 / 2, 4, \"fc\");", "Linear(x, 16.0 / 2, 4, \"fc\")", "Ops.Linear(Expr x, int inFeatures")]
    [InlineData("return Softmax(x, 1, 2);", "Softmax(x, 1, 2)", "Expr Ops.Softmax(Expr x) or Expr Ops.Softmax(Expr x, Expr mask)")]
    public void GC0010_OpCalledWithArgumentsThatDoNotBind(string body, string located, string signature)
    {
        // An existing op with bad arguments is not an unknown op: name the call and show the op's signature.
        var source = Mlp(body);
        var diagnostic = SingleError(source, "GC0010", allowCompilerErrors: true);
        AssertAt(diagnostic, source, located);
        Assert.Contains($"the arguments of '{located}' do not match", diagnostic.GetMessage());
        Assert.True(diagnostic.GetMessage().Contains(signature, StringComparison.Ordinal), diagnostic.GetMessage());
    }

    /// <summary>The encoder model with a [Quantize] attribute.</summary>
    private static string QuantizedEncoder(string quantize) => Encoder().Replace("[Model(\"enc\")]", "[Model(\"enc\")]\n[" + quantize + "]");

    [Theory]
    [InlineData("layer.0.")]
    [InlineData("words")] // the word table: it stays fp32
    public void QuantizedEncoderWithValidExclusionCompiles(string prefix)
    {
        var (result, output) = GeneratorHarness.Run(GeneratorHarness.Usings + QuantizedEncoder($"Quantize(Exclude = new[] {{ \"{prefix}\" }})"));
        Assert.Empty(GeneratorHarness.GeneratorDiagnostics(result));
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        Assert.NotNull(output.GetTypeByMetadataName("TestModels.EncInt8Module"));
    }

    [Theory]
    [InlineData("Quantize(Exclude = new[] { \"\" })", "an Exclude prefix is empty")]
    [InlineData("Quantize(Exclude = new[] { \"layer.0.\", \"layer.0.\" })", "Exclude lists 'layer.0.' twice")]
    public void GC0011_BadExcludePrefix(string quantize, string message)
    {
        var source = QuantizedEncoder(quantize);
        var diagnostic = SingleError(source, "GC0011");
        AssertAt(diagnostic, source, quantize);
        Assert.Contains("[Quantize] on 'Enc': " + message, diagnostic.GetMessage());
    }

    [Fact]
    public void GC0011_ExcludePrefixMatchingNoQuantizedGemm()
    {
        // "layer.9." is a typo (two layers); "positions" names a position table, read by rows and never quantized.
        foreach (var prefix in new[] { "layer.9.", "positions" })
        {
            var quantize = $"Quantize(Exclude = new[] {{ \"layer.1.\", \"{prefix}\" }})";
            var source = QuantizedEncoder(quantize);
            var diagnostic = SingleError(source, "GC0011");
            AssertAt(diagnostic, source, quantize);
            Assert.Contains($"Exclude prefix '{prefix}' matches no GEMM weight or embedding table that would be quantized (they are: layer.0.q.weight, layer.1.q.weight, words.weight)", diagnostic.GetMessage());
        }
    }

    /// <summary>Runs the generator and checks what every broken declaration must satisfy: no exception, no
    /// internal error, no generated source.</summary>
    private static (GeneratorDriverRunResult Result, Compilation Output) RunClean(string source)
    {
        var (result, output) = GeneratorHarness.Run(GeneratorHarness.Usings + source);
        Assert.All(result.Results, r => Assert.Null(r.Exception));
        Assert.DoesNotContain(GeneratorHarness.GeneratorDiagnostics(result), d => d.Id == "GC9999");
        Assert.Empty(result.GeneratedTrees);
        return (result, output);
    }

    /// <summary>The one GC diagnostic of a broken declaration; C# errors in the input are allowed only when the
    /// broken construct is also invalid C#.</summary>
    private static Diagnostic SingleError(string source, string id, bool allowCompilerErrors = false)
    {
        var (result, output) = RunClean(source);
        var diagnostics = GeneratorHarness.GeneratorDiagnostics(result);
        var all = string.Join("\n", diagnostics.Select(d => $"{d.Id} '{GeneratorHarness.LocatedText(d)}': {d.GetMessage()}"));
        Assert.True(diagnostics.Count == 1 && diagnostics[0].Id == id, $"expected one {id}, got:\n{all}");
        Assert.Equal(DiagnosticSeverity.Error, diagnostics[0].Severity);
        if (!allowCompilerErrors)
        {
            Assert.DoesNotContain(GeneratorHarness.CompileErrors(output), e => !e.Id.StartsWith("GC", StringComparison.Ordinal));
        }

        return diagnostics[0];
    }

    /// <summary>Asserts the squiggle covers exactly <paramref name="text"/>, found inside the (unique) text
    /// <paramref name="occurrence"/> of the source, and sits on that line.</summary>
    private static void AssertAt(Diagnostic diagnostic, string source, string text, string? occurrence = null)
    {
        var full = GeneratorHarness.Usings + source;
        var anchor = occurrence ?? text;
        var at = full.IndexOf(anchor, StringComparison.Ordinal);
        Assert.True(at >= 0 && full.IndexOf(anchor, at + 1, StringComparison.Ordinal) < 0, $"'{anchor}' must occur exactly once in the test source");
        var start = full.IndexOf(text, at, StringComparison.Ordinal);
        Assert.Equal(text, GeneratorHarness.LocatedText(diagnostic));
        Assert.Equal(start, diagnostic.Location.SourceSpan.Start);
        var line = full.Substring(0, start).Count(c => c == '\n');
        Assert.Equal(line, diagnostic.Location.GetLineSpan().StartLinePosition.Line);
    }
}
