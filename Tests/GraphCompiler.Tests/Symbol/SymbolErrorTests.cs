using System.Text.Json.Nodes;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Runtime.Weights;
using GraphCompiler.Tests.Declarations;
using GraphCompiler.Tests.Weights;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Symbol;

/// <summary>Bad symbol files, bad params files, bad inputs and failed exports: each is refused with a message naming
/// the file and the node or tensor, and an export that fails leaves no half-written pair.</summary>
public class SymbolErrorTests
{
    // num_linear's graph (see its SymbolJson): %0 input x; %9 tanh(%0); %10, %12 params plain.weight / plain.bias;
    // %13 linear(%9, %10, %12); %14 scale(%0); %27 concat(…) is the head.
    private static JsonObject Graph() => JsonNode.Parse(LinearModelModule.SymbolJson)!.AsObject();

    private static JsonObject Node(JsonObject graph, int id) =>
        graph["nodes"]!.AsArray().Select(n => n!.AsObject()).Single(n => (int)n["id"]! == id);

    private static SymbolFileException AssertBadSymbol(JsonObject graph, params string[] parts) => AssertBadSymbol(graph.ToJsonString(), parts);

    private static SymbolFileException AssertBadSymbol(string text, params string[] parts)
    {
        using var dir = new TempDir();
        var path = dir.Write("bad-symbol.json", System.Text.Encoding.UTF8.GetBytes(text));
        return SymbolTestKit.AssertFails(() => SymbolFile.Load(path), path, parts);
    }

    // ───────────────────────────── symbol files ─────────────────────────────

    [Fact]
    public void UnknownFormatIsRefused()
    {
        var g = Graph();
        g["format"] = "mxnet-symbol";
        AssertBadSymbol(g, "unknown format 'mxnet-symbol'", "graphcompiler-symbol");
    }

    [Fact]
    public void UnknownVersionIsRefused()
    {
        var g = Graph();
        g["version"] = 2;
        AssertBadSymbol(g, "version 2 is not supported", "version 1");
    }

    [Fact]
    public void MalformedJsonNamesLineAndPosition()
    {
        // Line 3 is `  "version": 1,`; a stray character at its 14th position.
        var text = LinearModelModule.SymbolJson.Replace("\"version\": 1,", "\"version\": x1,", StringComparison.Ordinal);
        var ex = AssertBadSymbol(text, "malformed JSON at line 3, position 14");
        Assert.Null(ex.Node);
        AssertBadSymbol(LinearModelModule.SymbolJson[..200], "malformed JSON at line");
    }

    [Fact]
    public void UnknownOpIsRefusedAtLoad()
    {
        var g = Graph();
        Node(g, 9)["op"] = "conv2d";
        var ex = AssertBadSymbol(g, "node 9 (conv2d)", "unknown op 'conv2d'", "tanh");
        Assert.Equal("node 9 (conv2d)", ex.Node);
    }

    [Fact]
    public void AReaderMayKnowOtherOps()
    {
        // E.g. an exporter that translates ops the interpreter does not run (qlinear it runs now).
        var g = Graph();
        Node(g, 9)["op"] = "fused_future_op";
        var known = new HashSet<string>(SymbolInterpreter.SupportedOps) { "fused_future_op" };
        Assert.Equal("fused_future_op", SymbolFile.Parse(g.ToJsonString(), "custom", known).Nodes.Single(n => n.Id == 9).Op);
        AssertBadSymbol(g, "unknown op 'fused_future_op'");
    }

    [Fact]
    public void GraphWithoutBucketsIsRefused()
    {
        var g = Graph();
        g["buckets"] = new JsonArray();
        AssertBadSymbol(g, "no buckets");
    }

    [Fact]
    public void CycleIsNamedWithItsNodes()
    {
        var g = Graph();
        Node(g, 9)["inputs"] = new JsonArray(13); // tanh reads the linear that reads it
        AssertBadSymbol(g, "cycle: node 13 (linear, scope 'plain') → node 9 (tanh) → node 13 (linear, scope 'plain')");
    }

    [Fact]
    public void NodesOutOfOrderAreRefused()
    {
        var g = Graph();
        Node(g, 9)["inputs"] = new JsonArray(14); // an acyclic read of a later node
        var ex = AssertBadSymbol(g, "reads node 14 (scale)", "comes after it", "topological order");
        Assert.DoesNotContain("cycle", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DanglingInputIsRefused()
    {
        var g = Graph();
        Node(g, 13)["inputs"] = new JsonArray(9, 10, 999);
        AssertBadSymbol(g, "node 13 (linear, scope 'plain')", "input 999 refers to no node (dangling input)");
    }

    [Fact]
    public void DuplicateIdIsRefused()
    {
        var g = Graph();
        Node(g, 14)["id"] = 9;
        AssertBadSymbol(g, "duplicate id 9", "node 9 (tanh)", "node 9 (scale)");
    }

    [Fact]
    public void ParamWithoutNameIsRefused()
    {
        var g = Graph();
        Node(g, 10)["attrs"]!.AsObject().Remove("name");
        AssertBadSymbol(g, "node 10 (param)", "without a \"name\"");
    }

    [Fact]
    public void HeadsAndArgumentsMustPointAtNodes()
    {
        var g = Graph();
        g["heads"]![0]!["node"] = 500;
        AssertBadSymbol(g, "head 'output0'", "node 500, which does not exist");

        g = Graph();
        g["arguments"]![0]!["node"] = 9;
        AssertBadSymbol(g, "argument 'x'", "node 9 (tanh), which is not an input node");
    }

    [Fact]
    public void BadTypesAreRefused()
    {
        var g = Graph();
        Node(g, 9)["type"]!["dtype"] = "f31";
        AssertBadSymbol(g, "node 9 (tanh)", "unknown dtype 'f31'");

        g = Graph();
        Node(g, 10)["type"]!["shape"] = new JsonArray("5", "-8");
        AssertBadSymbol(g, "node 10 (param 'plain.weight')", "bad dimension \"-8\"");

        g = Graph();
        Node(g, 9)["type"]!["shape"] = new JsonArray("batch", "sequence", "8");
        AssertBadSymbol(g, "node 9 (tanh)", "bad dimension \"sequence\"");
    }

    [Fact]
    public void BadAttributesAreRefusedAtImport()
    {
        using var dir = new TempDir();
        using var module = new LinearModelModule();
        var (symbolFile, paramsFile) = ModelExport.Export(module, dir.File("m"));
        var g = Graph();
        Node(g, 4)["attrs"]!["end"] = "six";
        File.WriteAllText(symbolFile, g.ToJsonString());
        SymbolTestKit.AssertFails(() => SymbolBlock.Imports(symbolFile, new[] { "x" }, paramsFile), symbolFile, "node 4 (slice, scope 'proj.left')", "attribute end=six is not an integer");

        g = Graph();
        Node(g, 9)["inputs"] = new JsonArray(0, 0);
        File.WriteAllText(symbolFile, g.ToJsonString());
        SymbolTestKit.AssertFails(() => SymbolBlock.Imports(symbolFile, new[] { "x" }, paramsFile), symbolFile, "node 9 (tanh)", "tanh takes 1 inputs, got 2");
    }

    // ───────────────────────────── params files ─────────────────────────────

    /// <summary>num_linear exported, then its params rewritten by <paramref name="edit"/>; returns the import's error.</summary>
    private static SymbolFileException AssertBadParams(Action<Dictionary<string, Tensor>> edit, params string[] parts)
    {
        using var dir = new TempDir();
        using var module = new LinearModelModule();
        var (symbolFile, paramsFile) = ModelExport.Export(module, dir.File("m"));
        Dictionary<string, Tensor> tensors;
        using (var set = SafeTensors.Read(paramsFile))
        {
            tensors = set.ToDictionary(kv => kv.Key, kv => kv.Value.clone());
            edit(tensors);
            SafeTensors.Write(paramsFile, tensors, set.Metadata);
        }

        return SymbolTestKit.AssertFails(() => SymbolBlock.Imports(symbolFile, new[] { "x" }, paramsFile), paramsFile, parts);
    }

    [Fact]
    public void TruncatedParamsAreRefused()
    {
        using var dir = new TempDir();
        using var module = new LinearModelModule();
        var (symbolFile, paramsFile) = ModelExport.Export(module, dir.File("m"));
        var bytes = File.ReadAllBytes(paramsFile);
        File.WriteAllBytes(paramsFile, bytes[..^20]);
        var ex = SymbolTestKit.AssertFails(() => SymbolBlock.Imports(symbolFile, new[] { "x" }, paramsFile), paramsFile, "truncated");
        Assert.IsType<WeightFileException>(ex.InnerException);
    }

    [Fact]
    public void WrongDTypeIsRefused()
    {
        var ex = AssertBadParams(t => t["plain.weight"] = t["plain.weight"].to(ScalarType.Float64), "tensor 'plain.weight'", "dtype is Float64", "node 10 (param 'plain.weight') wants f32");
        Assert.Equal("tensor 'plain.weight'", ex.Node);
    }

    [Fact]
    public void WrongShapeIsRefused() =>
        AssertBadParams(t => t["plain.weight"] = t["plain.weight"].narrow(0, 0, 4), "tensor 'plain.weight'", "shape is [4,8]", "wants [5,8]");

    [Fact]
    public void MissingAndUnexpectedTensorsAreListed()
    {
        AssertBadParams(t => t.Remove("plain.bias"), "missing 1 tensor(s)", "plain.bias");
        AssertBadParams(t => t["extra.weight"] = zeros(2), "1 unexpected tensor(s)", "extra.weight");
        AssertBadParams(t =>
        {
            t.Remove("up.bias");
            t["up.biases"] = zeros(12);
        }, "missing 1 tensor(s) the graph needs: up.bias", "unexpected tensor(s) no param node names: up.biases");
    }

    [Fact]
    public void WrongInputNamesAreRefusedWithTheExpectedNames()
    {
        using var dir = new TempDir();
        using var module = new EmbeddingModelModule();
        var (symbolFile, paramsFile) = ModelExport.Export(module, dir.File("m"));
        SymbolTestKit.AssertFails(() => SymbolBlock.Imports(symbolFile, new[] { "ids", "type", "validLength" }, paramsFile), symbolFile,
            "expected ids, types, validLength", "unknown: type", "missing: types");
        SymbolTestKit.AssertFails(() => SymbolBlock.Imports(symbolFile, new[] { "ids", "types" }, paramsFile), symbolFile, "expected ids, types, validLength", "missing: validLength");
        SymbolTestKit.AssertFails(() => SymbolBlock.Imports(symbolFile, new[] { "ids", "ids", "types" }, paramsFile), symbolFile, "given twice");
    }

    // ───────────────────────────── running ─────────────────────────────

    [Fact]
    public void InputsAreCheckedAgainstTheBuckets()
    {
        using var dir = new TempDir();
        using var module = new LinearModelModule();
        var (symbolFile, paramsFile) = ModelExport.Export(module, dir.File("m"));
        using var block = SymbolBlock.Imports(symbolFile, new[] { "x" }, paramsFile);
        using var scope = NewDisposeScope();

        // The same messages as the generated forward's.
        var noBucket = Assert.Throws<ArgumentException>(() => block.Run(randn(3, 3, 8)));
        Assert.Contains("Model 'num_linear' has no forward for batch 3 × sequence length 3", noBucket.Message, StringComparison.Ordinal);
        Assert.Contains("2×3, 2×5", noBucket.Message, StringComparison.Ordinal);
        var generatedNoBucket = Assert.Throws<ArgumentException>(() => module.forward(randn(3, 3, 8)));
        Assert.Equal(generatedNoBucket.Message, noBucket.Message);

        var badShape = Assert.Throws<ArgumentException>(() => block.Run(randn(2, 3, 7)));
        Assert.Contains("input 'x' must have shape [2, 3, 8] in this bucket, got [2, 3, 7]", badShape.Message, StringComparison.Ordinal);
        var badType = Assert.Throws<ArgumentException>(() => block.Run(randn(2, 5, 8, dtype: ScalarType.Float64)));
        Assert.Contains("input 'x' must be Float32, got Float64", badType.Message, StringComparison.Ordinal);
        var count = Assert.Throws<ArgumentException>(() => block.Run(randn(2, 3, 8), randn(2, 3, 8)));
        Assert.Contains("takes 1 inputs (x), got 2", count.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InconsistentGraphsFailAtTheNodeWhenRun()
    {
        using var dir = new TempDir();
        using var module = new LinearModelModule();
        var (symbolFile, paramsFile) = ModelExport.Export(module, dir.File("m"));
        using var scope = NewDisposeScope();

        // A type that the op does not produce.
        var g = Graph();
        Node(g, 9)["type"]!["shape"] = new JsonArray("batch", "seq", "9");
        File.WriteAllText(symbolFile, g.ToJsonString());
        using (var block = SymbolBlock.Imports(symbolFile, new[] { "x" }, paramsFile))
        {
            SymbolTestKit.AssertFails(() => block.Run(randn(2, 3, 8)), symbolFile, "node 9 (tanh)", "computed Float32[2,3,8], but its type says f32[batch,seq,9]");
        }

        // An op that libtorch refuses.
        g = Graph();
        Node(g, 4)["attrs"]!["dim"] = "7";
        File.WriteAllText(symbolFile, g.ToJsonString());
        using (var block = SymbolBlock.Imports(symbolFile, new[] { "x" }, paramsFile))
        {
            var ex = SymbolTestKit.AssertFails(() => block.Run(randn(2, 3, 8)), symbolFile, "node 4 (slice, scope 'proj.left')", "slice failed on inputs (Float32[2,3,10])");
            Assert.NotNull(ex.InnerException);
        }
    }

    // ───────────────────────────── export ─────────────────────────────

    [Fact]
    public void ExportRefusesModulesItCannotDescribe()
    {
        using var dir = new TempDir();
        using var linear = nn.Linear(4, 2);
        var ex = Assert.Throws<ArgumentException>(() => ModelExport.Export(linear, dir.File("m")));
        Assert.Contains("not a generated graph module", ex.Message, StringComparison.Ordinal);

        // Parameters that no longer fit the graph: refused before anything is written.
        using var module = new LinearModelModule();
        module.to(ScalarType.Float64);
        var mismatch = Assert.Throws<SymbolFileException>(() => ModelExport.Export(module, dir.File("m")));
        Assert.Contains("module 'num_linear'", mismatch.Message, StringComparison.Ordinal);
        Assert.Contains("dtype is Float64", mismatch.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(dir.Root));
    }

    [Fact]
    public void FailedExportLeavesThePreviousPairIntact()
    {
        using var dir = new TempDir();
        using var first = new LinearModelModule();
        var (symbolFile, paramsFile) = ModelExport.Export(first, dir.File("m"));
        var before = (File.ReadAllBytes(symbolFile), File.ReadAllBytes(paramsFile));

        // A second export of other weights fails at its last step, after the new params file is in place.
        manual_seed(5);
        using var second = new LinearModelModule();
        ModelExport.BeforeRename = target =>
        {
            if (target == symbolFile)
            {
                throw new IOException("disk full (injected)");
            }
        };
        try
        {
            Assert.Throws<IOException>(() => ModelExport.Export(second, dir.File("m")));
        }
        finally
        {
            ModelExport.BeforeRename = null;
        }

        Assert.Equal(before.Item1, File.ReadAllBytes(symbolFile));
        Assert.Equal(before.Item2, File.ReadAllBytes(paramsFile));
        Assert.Equal(new[] { paramsFile, symbolFile }.Order(StringComparer.Ordinal), Directory.GetFiles(dir.Root).Order(StringComparer.Ordinal));
        using var block = SymbolBlock.Imports(symbolFile, new[] { "x" }, paramsFile); // and the pair still imports
    }
}
