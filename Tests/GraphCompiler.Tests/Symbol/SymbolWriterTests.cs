using System.Globalization;
using System.Text.Json;
using GraphCompiler.Generator;
using GraphCompiler.Generator.Emit;
using GraphCompiler.Generator.Ir;
using GraphCompiler.Runtime.Symbol;
using Xunit;

namespace GraphCompiler.Tests.Symbol;

/// <summary>SymbolWriter on IR built directly (no Roslyn): what it writes reads back as the same graph, strings are
/// escaped, and the text does not depend on the culture.</summary>
public class SymbolWriterTests
{
    private const string Ir = """
        graph tiny
          %0 = input {name="x"} : f32[batch,seq,16]
          %1 = input {name="validLength"} : i64[batch]
          %2 = param {init="normal", name="fc.weight"} : f32[8,16]
          %3 = param {init="zeros", name="fc.bias"} : f32[8]
          %4 = linear(%0, %2, %3) : f32[batch,seq,8]  # fc @ Tiny.cs:12
          %5 = scale(%4) {factor=1E-12} : f32[batch,seq,8]  # fc
          %6 = reshape(%5) {shape=[batch,seq,2,4]} : f32[batch,seq,2,4]
          %7 = permute(%6) {order=[0,2,1,3]} : f32[batch,2,seq,4]
          %8 = length_mask(%1) : f32[batch,1,1,seq]
          %9 = matmul(%7, %7) {transB=true} : f32[batch,2,seq,seq]
          return %9, %8
        """;

    [Fact]
    public void WrittenSymbolReadsBackAsTheGraph()
    {
        var graph = IrText.Parse(Ir);
        var json = SymbolWriter.Write(graph, "tiny", "fp32", new[] { (4, 8), (4, 16) }, new[] { "scores", "mask" });
        var symbol = SymbolFile.Parse(json, "tiny-symbol.json");

        Assert.Equal(SymbolGraph.FormatName, symbol.Format);
        Assert.Equal(SymbolGraph.FormatVersion, symbol.Version);
        Assert.Equal("tiny", symbol.Model);
        Assert.Equal("fp32", symbol.Precision);
        Assert.Equal(new[] { new SymbolBucket(4, 8), new SymbolBucket(4, 16) }, symbol.Buckets);
        Assert.Equal(new[] { new SymbolArgument("x", 0), new SymbolArgument("validLength", 1) }, symbol.Arguments);
        Assert.Equal(new[] { new SymbolHead("scores", 9), new SymbolHead("mask", 8) }, symbol.Heads);
        SymbolTestKit.AssertSameNodes(graph, symbol);

        var linear = symbol.Nodes.Single(n => n.Op == "linear");
        Assert.Equal("fc", linear.Scope);
        Assert.Equal(new[] { "batch", "seq", "8" }, linear.Type.Shape);
        Assert.Equal("1E-12", symbol.Nodes.Single(n => n.Op == "scale").Attrs["factor"]);
        Assert.Equal("[batch,seq,2,4]", symbol.Nodes.Single(n => n.Op == "reshape").Attrs["shape"]);
        Assert.Equal("fc.weight", symbol.Nodes.Single(n => n.Id == 2).Attrs["name"]); // quoted in the IR, plain here
        Assert.Equal("normal", symbol.Nodes.Single(n => n.Id == 2).Attrs["init"]);
    }

    [Fact]
    public void UnnamedHeadsAreNumbered()
    {
        var symbol = SymbolFile.Parse(SymbolWriter.Write(IrText.Parse(Ir), "tiny", "fp32", new[] { (4, 8) }), "tiny");
        Assert.Equal(new[] { "output0", "output1" }, symbol.Heads.Select(h => h.Name));
    }

    [Fact]
    public void StringsAreEscapedAsJson()
    {
        // Quote, backslash, controls, a line separator and non-ASCII in a param name and a scope.
        const string awkward = "a\"b\\c\nd\te\u0001f\u2028g é ✓";
        var graph = IrText.Parse(Ir);
        graph = graph with
        {
            Nodes = graph.Nodes.Select(n => n.Id == 2 ? n.WithAttr(Attr.Str("name", awkward)) with { Scope = awkward } : n).ToEquatableArray(),
        };
        var json = SymbolWriter.Write(graph, "tiny \"q\"", "fp32", new[] { (4, 8) });

        using var doc = JsonDocument.Parse(json); // strict RFC 8259 reader
        var node = doc.RootElement.GetProperty("nodes")[2];
        Assert.Equal(awkward, node.GetProperty("attrs").GetProperty("name").GetString());
        Assert.Equal(awkward, node.GetProperty("scope").GetString());
        Assert.Equal("tiny \"q\"", doc.RootElement.GetProperty("model").GetString());
        Assert.DoesNotContain("\u0001", json, StringComparison.Ordinal);
        Assert.DoesNotContain("\u2028", json, StringComparison.Ordinal);
        Assert.Equal(awkward, SymbolFile.Parse(json, "awkward").Nodes[2].Attrs["name"]);
    }

    [Fact]
    public void OutputDoesNotDependOnCulture()
    {
        var graph = IrText.Parse(Ir);
        var previous = CultureInfo.CurrentCulture;
        string invariant, german;
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
            invariant = SymbolWriter.Write(graph, "tiny", "fp32", new[] { (4, 8) });
            CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE");
            german = SymbolWriter.Write(graph, "tiny", "fp32", new[] { (4, 8) });
        }
        finally
        {
            CultureInfo.CurrentCulture = previous;
        }

        Assert.Equal(invariant, german);
        Assert.Contains("\"factor\": \"1E-12\"", german, StringComparison.Ordinal);
    }
}
