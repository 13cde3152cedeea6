using System.Globalization;
using GraphCompiler.ModelDefs;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Onnx;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Tests.Declarations;
using GraphCompiler.Tests.Infrastructure;
using GraphCompiler.Tests.Runtime;
using GraphCompiler.Tests.Weights;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static GraphCompiler.Tests.Onnx.OnnxTestKit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Onnx;

/// <summary>Exported ONNX models run in ONNX Runtime and compute what the generated TorchSharp modules compute.</summary>
[Collection(TorchRngCollection.Name)]
public sealed class OnnxExportTests(ITestOutputHelper output)
{
    /// <summary>fp32, different kernels and summation orders (ORT's fused Gelu/LayerNorm/MatMul vs libtorch's).</summary>
    private const double Tolerance = 1e-4;

    private static readonly Dictionary<string, Func<nn.Module>> SmallModels = new()
    {
        ["num_elementwise"] = () => new ElementwiseModelModule(),
        ["num_shapes"] = () => new ShapeModelModule(),
        ["num_matmul_softmax"] = () => new MatMulSoftmaxModelModule(),
        ["num_linear"] = () => new LinearModelModule(),
        ["num_layer_norm"] = () => new LayerNormModelModule(),
        ["num_embedding"] = () => new EmbeddingModelModule(),
        ["num_attention"] = () => new AttentionModelModule(),
        ["num_encoder"] = () => new EncoderModelModule(),
        ["num_float64"] = () => new Float64ModelModule(),
        ["num_llama"] = () => new LlamaModelModule(),
    };

    /// <summary>Every inference op of the IR appears in one of these models; one ONNX file serves both buckets.</summary>
    [Theory]
    [InlineData("num_elementwise")]
    [InlineData("num_shapes")]
    [InlineData("num_matmul_softmax")]
    [InlineData("num_linear")]
    [InlineData("num_layer_norm")]
    [InlineData("num_embedding")]
    [InlineData("num_attention")]
    [InlineData("num_encoder")]
    [InlineData("num_float64")]
    [InlineData("num_llama")]
    public void Export_SmallGeneratedModel_OrtEqualsGeneratedModule(string name) => ExportAndCompare(name, new OnnxExportOptions());

    /// <summary>RMSNorm by opset: spelled out with ReduceMean's axes as an attribute (17) or an input (18), and ONNX's
    /// own RMSNormalization (23), each run by ONNX Runtime against the generated module.</summary>
    [Theory]
    [InlineData(18)]
    [InlineData(23)]
    public void Export_RmsNormAtLaterOpsets_OrtEqualsGeneratedModule(int opset) =>
        ExportAndCompare("num_llama", new OnnxExportOptions { Opset = opset, IrVersion = opset >= 23 ? 11 : 8 }); // IR 11 came with opset 23

    private void ExportAndCompare(string name, OnnxExportOptions options)
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        manual_seed(11);
        var module = SmallModels[name]();
        module.eval();
        foreach (var (_, p) in module.named_parameters())
        {
            p.copy_(randn_like(p) * 0.5); // away from ones/zeros initialisation, so every parameter matters
        }

        var symbol = FromModule((IGraphModule)module);
        var path = dir.File(name + ".onnx");
        OnnxExport.Export(symbol, Parameters(module), path, options);
        if (name == "num_llama")
        {
            // ONNX's own RMSNormalization from opset 23, the spelled-out formula below it.
            var usesRmsNormalization = System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(path)).Contains("RMSNormalization", StringComparison.Ordinal);
            Assert.Equal(options.Opset >= 23, usesRmsNormalization);
        }

        using var session = Session(path);
        Assert.Equal(symbol.Arguments.Select(a => a.Name), session.InputMetadata.Keys);

        foreach (var bucket in symbol.Buckets)
        {
            var inputs = symbol.Arguments.Select(a => (a.Name, Value: RandomInput(symbol, a, bucket))).ToList();
            var expected = Forward(module, inputs.Select(i => i.Value).ToArray());
            var actual = Run(session, inputs)["output"];
            Assert.Equal(expected.shape, actual.shape);
            var diff = MaxAbsDiff(expected, actual);
            output.WriteLine($"{name} opset {options.Opset} {bucket.Batch}×{bucket.Seq}: max |Δ| {diff:E2}");
            Assert.True(diff <= Tolerance, $"{name} at {bucket.Batch}×{bucket.Seq}: ORT differs from the generated module by {diff:E2} > {Tolerance}");
        }
    }

    [Fact]
    public void Export_PretrainedMiniLmClassifier_OrtEqualsGeneratedModuleOnMrpcDev()
    {
        using var dir = new TempDir();
        using var zoo = ModelZoo.GetModel("minilm", pretrained: true);
        var module = zoo.Module;
        module.eval();
        using (no_grad())
        {
            // The fresh head (std 0.02) gives logits of ~0.05; a unit-scale head makes every pooled feature count.
            var head = module.named_parameters().Single(p => p.name == "classifier.weight").parameter;
            manual_seed(17);
            head.copy_(randn_like(head));
        }

        var symbol = FromModule(zoo.Graph);
        var path = dir.File("minilm.onnx");
        OnnxExport.Export(symbol, Parameters(module), path);
        output.WriteLine($"minilm.onnx: {new FileInfo(path).Length:N0} bytes, {symbol.Nodes.Count} symbol nodes");

        var (ids, types, lengths) = MrpcBatch(zoo, skip: 0, seq: 128);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var expected = Forward(module, ids, types, lengths);
        using var session = Session(path);
        var actual = Run(session, new[] { ("inputIds", ids), ("tokenTypes", types), ("validLength", lengths) })["output"];
        var diff = MaxAbsDiff(expected, actual);
        output.WriteLine($"MiniLM classifier, 32 MRPC dev pairs at 32×128: max |Δ| logits {diff:E2} (logits up to {expected.abs().max().item<float>():F3})");
        Assert.True(expected.abs().max().item<float>() > 0.5, "logits are all ~0: the comparison would prove nothing");
        Assert.True(diff <= Tolerance, $"ORT differs from the generated MiniLM by {diff:E2} > {Tolerance}");
    }

    /// <summary>qlinear (static) and qlinear_gelu (dynamic) against a float64 evaluation of the int8 semantics: x
    /// quantized to ±127 with round-half-to-even, exact integer GEMM, × input_scale × weight_scale[n], + bias, GELU.
    /// Tolerance 1e-5 relative to the largest output: only the float32 dequantization rounding differs.</summary>
    [Fact]
    public void Export_Int8QLinear_StaticAndDynamic_OrtEqualsFloat64Reference()
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        manual_seed(5);
        const int K = 16, N = 8, N2 = 4;
        var x0 = randn(2, 3, K);
        var parameters = new Dictionary<string, Tensor>
        {
            ["fc.weight"] = randint(-127, 128, new long[] { N, K }).to(ScalarType.Int8),
            ["fc.weight_scale"] = rand(N) * 0.01f + 0.001f,
            // Small enough that the largest |x| quantize beyond ±127: the clamp is exercised.
            ["fc.input_scale"] = tensor(x0.abs().max().item<float>() / 150f),
            ["fc.bias"] = randn(N),
            ["up.weight"] = randint(-127, 128, new long[] { N2, K }).to(ScalarType.Int8),
            ["up.weight_scale"] = rand(N2) * 0.01f + 0.001f,
        };
        var symbol = Int8Graph(K, N, N2);
        var path = dir.File("int8.onnx");
        OnnxExport.Export(symbol, parameters, path);
        var x1 = randn(1, 5, K) * 3;
        // Below -127.5 QuantizeLinear alone would give -128: the IR's clamp to -127 must show.
        Assert.True((x1 / parameters["fc.input_scale"]).lt(-127.5).any().item<bool>(), "no input saturates below -127: the clamp is not exercised");
        var model = OnnxModelReader.Read(path);
        Assert.Equal(2, model.Nodes.Count(n => n.OpType == "MatMulInteger"));
        var stored = model.Initializers.Single(i => i.Name == "fc.weight.transposed");
        Assert.Equal(OnnxDataType.Int8, stored.DataType);
        Assert.Equal(new long[] { K, N }, stored.Dims);
        Assert.DoesNotContain(model.Initializers, i => i.Name == "fc.weight"); // only the transposed copy is stored
        using var session = Session(path);

        foreach (var x in new[] { x0, x1 })
        {
            var outputs = Run(session, new[] { ("x", x) });
            var staticRef = QLinearReference(x, parameters["fc.weight"], parameters["fc.weight_scale"], parameters["fc.input_scale"], parameters["fc.bias"], gelu: false);
            var dynamicRef = QLinearReference(x, parameters["up.weight"], parameters["up.weight_scale"], null, null, gelu: true);
            foreach (var (head, reference) in new[] { ("static", staticRef), ("dynamic", dynamicRef) })
            {
                var diff = MaxAbsDiff(reference, outputs[head]);
                var bound = (1e-5 * reference.abs().max().item<double>()) + 1e-6;
                output.WriteLine($"{head} [{string.Join("×", x.shape)}]: max |Δ| {diff:E2} (bound {bound:E2})");
                Assert.True(diff <= bound, $"{head} qlinear differs from the float64 int8 reference by {diff:E2} > {bound:E2}");
            }
        }
    }

    /// <summary>qembedding: Gather(i8 table) → Cast → Mul(gathered row scales) in ORT equals Kernels.QuantizedEmbedding
    /// bit for bit (one f32 product per element either way); the table is stored int8, not dequantized.</summary>
    [Fact]
    public void Export_Int8QEmbedding_OrtEqualsKernel()
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        manual_seed(6);
        const int V = 40, H = 12;
        var (table, scale) = GraphCompiler.Runtime.Quantization.Int8Weights.QuantizePerChannel(randn(V, H) * rand(V, 1));
        var parameters = new Dictionary<string, Tensor> { ["words.weight"] = table, ["words.weight_scale"] = scale };
        static Dictionary<string, string> Name(string name) => new() { ["name"] = name };
        var symbol = Graph(
            new[] { new SymbolArgument("ids", 0) },
            new[] { new SymbolHead("output", 3) },
            new SymbolNode(0, "input", Array.Empty<int>(), Name("ids"), new SymbolType("i64", new[] { "batch", "seq" })),
            new SymbolNode(1, "param", Array.Empty<int>(), Name("words.weight"), new SymbolType("i8", new[] { "40", "12" })),
            new SymbolNode(2, "param", Array.Empty<int>(), Name("words.weight_scale"), F32("40")),
            new SymbolNode(3, "qembedding", new[] { 0, 1, 2 }, new Dictionary<string, string>(), F32("batch", "seq", "12"), "words"));
        var path = dir.File("qembedding.onnx");
        OnnxExport.Export(symbol, parameters, path);
        var model = OnnxModelReader.Read(path);
        Assert.Equal(OnnxDataType.Int8, model.Initializers.Single(i => i.Name == "words.weight").DataType);
        Assert.Equal(new[] { "Gather", "Cast", "Gather", "Unsqueeze", "Mul", "Identity" }, model.Nodes.Select(n => n.OpType));
        using var session = Session(path);
        foreach (var ids in new[] { randint(0, V, new long[] { 2, 3 }, dtype: ScalarType.Int64), arange(V, dtype: ScalarType.Int64).reshape(4, 10) })
        {
            var expected = Kernels.QuantizedEmbedding(ids, table, scale);
            var actual = Run(session, new[] { ("ids", ids) })["output"];
            var diff = MaxAbsDiff(expected, actual);
            output.WriteLine($"qembedding [{string.Join("×", ids.shape)}]: max |Δ| {diff:E2}");
            Assert.Equal(0.0, diff);
        }
    }

    /// <summary>The file is ordinary ONNX to other readers: symbolic batch/seq dims, parameters under their checkpoint
    /// names with their exact values (read back through OnnxWeights).</summary>
    [Fact]
    public void Export_FileHasSymbolicDimsAndNamedParametersThatReadBack()
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        manual_seed(2);
        using var module = new EncoderModelModule();
        var path = dir.File("encoder.onnx");
        OnnxExport.Export(FromModule(module), Parameters(module), path);

        using (var session = Session(path))
        {
            Assert.Equal(new[] { "batch", "seq", "" }, session.InputMetadata["x"].SymbolicDimensions);
            Assert.Equal(new[] { -1, -1, 16 }, session.InputMetadata["x"].Dimensions);
            Assert.Equal(new[] { "batch", "seq", "" }, session.OutputMetadata["output"].SymbolicDimensions);
        }

        var model = OnnxModelReader.Read(path);
        Assert.Equal(8, model.IrVersion);
        Assert.Equal(17, model.Opsets[""]);
        using var read = GraphCompiler.Runtime.Weights.OnnxWeights.Read(path);
        foreach (var (name, parameter) in module.named_parameters())
        {
            Assert.True(read.ContainsKey(name), $"parameter '{name}' is not an initializer of the export");
            Assert.True(parameter.detach().eq(read[name]).all().item<bool>(), $"parameter '{name}' changed on export");
        }
    }

    [Fact]
    public void Export_UnknownOp_ErrorNamesTheNode()
    {
        using var dir = new TempDir();
        var graph = Graph(
            new[] { new SymbolArgument("x", 0) },
            new[] { new SymbolHead("y", 1) },
            new SymbolNode(0, "input", Array.Empty<int>(), new Dictionary<string, string> { ["name"] = "x" }, F32("batch", "4")),
            new SymbolNode(1, "frobnicate", new[] { 0 }, new Dictionary<string, string>(), F32("batch", "4"), "encoder.layer.3"));
        var path = dir.File("bad.onnx");
        var error = Assert.Throws<OnnxExportException>(() => OnnxExport.Export(graph, new Dictionary<string, Tensor>(), path));
        output.WriteLine(error.Message);
        Assert.Contains("%1", error.Message);
        Assert.Contains("frobnicate", error.Message);
        Assert.Contains("encoder.layer.3", error.Message);
        Assert.False(File.Exists(path), "a failed export must not leave a file");
    }

    [Fact]
    public void Export_MissingOrMisShapedParameter_ErrorNamesIt()
    {
        using var dir = new TempDir();
        var graph = Graph(
            new[] { new SymbolArgument("x", 0) },
            new[] { new SymbolHead("y", 2) },
            new SymbolNode(0, "input", Array.Empty<int>(), new Dictionary<string, string> { ["name"] = "x" }, F32("batch", "4")),
            new SymbolNode(1, "param", Array.Empty<int>(), new Dictionary<string, string> { ["name"] = "fc.weight" }, F32("3", "4")),
            new SymbolNode(2, "matmul", new[] { 0, 1 }, new Dictionary<string, string> { ["transB"] = "true" }, F32("batch", "3")));
        var missing = Assert.Throws<OnnxExportException>(() => OnnxExport.Export(graph, new Dictionary<string, Tensor>(), dir.File("a.onnx")));
        Assert.Contains("'fc.weight'", missing.Message);
        using var wrong = zeros(4, 3);
        var misShaped = Assert.Throws<OnnxExportException>(() => OnnxExport.Export(graph, new Dictionary<string, Tensor> { ["fc.weight"] = wrong }, dir.File("b.onnx")));
        output.WriteLine(misShaped.Message);
        Assert.Contains("'fc.weight'", misShaped.Message);
        Assert.Contains("[4,3]", misShaped.Message);
    }

    // ---- helpers ----

    internal static (Tensor Ids, Tensor Types, Tensor Lengths) MrpcBatch(ZooModel zoo, int skip, int seq)
    {
        var tokenizer = zoo.Vocabulary.CreateTokenizer();
        var pairs = Mrpc.Pairs("dev").Skip(skip).Take(32).ToList();
        var ids = new long[32 * seq];
        var types = new long[32 * seq];
        var lengths = new long[32];
        for (var i = 0; i < pairs.Count; i++)
        {
            var a = tokenizer.EncodeToIds(pairs[i].A, addSpecialTokens: false);
            var b = tokenizer.EncodeToIds(pairs[i].B, addSpecialTokens: false);
            var pairIds = tokenizer.BuildInputsWithSpecialTokens(a, b);
            var pairTypes = tokenizer.CreateTokenTypeIdsFromSequences(a, b);
            Assert.True(pairIds.Count <= seq, $"MRPC dev pair {skip + i} has {pairIds.Count} tokens > {seq}");
            lengths[i] = pairIds.Count;
            for (var j = 0; j < pairIds.Count; j++)
            {
                ids[(i * seq) + j] = pairIds[j];
                types[(i * seq) + j] = pairTypes[j];
            }
        }

        return (tensor(ids, new long[] { 32, seq }), tensor(types, new long[] { 32, seq }), tensor(lengths));
    }

    /// <summary>A random input for an argument in a bucket: floats ~ N(0,1); [batch,seq] ids in {0,1} (valid for every
    /// table of the test models); [batch] valid lengths in 1..seq.</summary>
    private static Tensor RandomInput(SymbolGraph graph, SymbolArgument argument, SymbolBucket bucket)
    {
        var type = graph.Nodes.Single(n => n.Id == argument.Node).Type;
        var dims = type.Shape.Select(d => d switch
        {
            "batch" => (long)bucket.Batch,
            "seq" => bucket.Seq,
            _ => long.Parse(d, CultureInfo.InvariantCulture),
        }).ToArray();
        return type.DType switch
        {
            "f32" => randn(dims),
            "f64" => randn(dims, ScalarType.Float64),
            "i64" when dims.Length == 1 => randint(1, bucket.Seq + 1, dims),
            "i64" => randint(0, 2, dims),
            _ => throw new InvalidOperationException($"argument '{argument.Name}' has dtype {type.DType}"),
        };
    }

    private static SymbolType F32(params string[] dims) => new("f32", dims);

    private static SymbolGraph Graph(IReadOnlyList<SymbolArgument> arguments, IReadOnlyList<SymbolHead> heads, params SymbolNode[] nodes) =>
        new(SymbolGraph.FormatName, SymbolGraph.FormatVersion, "hand_built", "f32", new[] { new SymbolBucket(2, 3) }, arguments, nodes, heads);

    /// <summary>x f32[batch,seq,K] → static qlinear with input_scale and bias (head "static"), and dynamic qlinear_gelu
    /// without either (head "dynamic").</summary>
    private static SymbolGraph Int8Graph(int k, int n, int n2)
    {
        static Dictionary<string, string> Name(string name) => new() { ["name"] = name };
        var K = k.ToString(CultureInfo.InvariantCulture);
        var Nt = n.ToString(CultureInfo.InvariantCulture);
        var N2t = n2.ToString(CultureInfo.InvariantCulture);
        return Graph(
            new[] { new SymbolArgument("x", 0) },
            new[] { new SymbolHead("static", 5), new SymbolHead("dynamic", 8) },
            new SymbolNode(0, "input", Array.Empty<int>(), Name("x"), F32("batch", "seq", K)),
            new SymbolNode(1, "param", Array.Empty<int>(), Name("fc.weight"), new SymbolType("i8", new[] { Nt, K })),
            new SymbolNode(2, "param", Array.Empty<int>(), Name("fc.weight_scale"), F32(Nt)),
            new SymbolNode(3, "param", Array.Empty<int>(), Name("fc.input_scale"), F32()),
            new SymbolNode(4, "param", Array.Empty<int>(), Name("fc.bias"), F32(Nt)),
            new SymbolNode(5, "qlinear", new[] { 0, 1, 2, 3, 4 }, new Dictionary<string, string> { ["mode"] = "static" }, F32("batch", "seq", Nt), "fc"),
            new SymbolNode(6, "param", Array.Empty<int>(), Name("up.weight"), new SymbolType("i8", new[] { N2t, K })),
            new SymbolNode(7, "param", Array.Empty<int>(), Name("up.weight_scale"), F32(N2t)),
            new SymbolNode(8, "qlinear_gelu", new[] { 0, 6, 7 }, new Dictionary<string, string> { ["mode"] = "\"dynamic\"" }, F32("batch", "seq", N2t), "up"));
    }

    /// <summary>The int8 semantics in float64 (torch.round is round-half-to-even).</summary>
    private static Tensor QLinearReference(Tensor x, Tensor weight, Tensor weightScale, Tensor? inputScale, Tensor? bias, bool gelu)
    {
        var x64 = x.to(ScalarType.Float64);
        var scale = inputScale?.to(ScalarType.Float64) ?? (x64.abs().max() / 127.0);
        var q = (x64 / scale).round().clamp(-127, 127);
        var accumulated = q.matmul(weight.to(ScalarType.Float64).t());
        var y = accumulated * (scale * weightScale.to(ScalarType.Float64));
        if (bias is not null)
        {
            y = y + bias.to(ScalarType.Float64);
        }

        return gelu ? nn.functional.gelu(y) : y;
    }
}
