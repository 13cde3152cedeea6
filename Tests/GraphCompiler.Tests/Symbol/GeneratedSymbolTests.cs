using System.Reflection;
using GraphCompiler.Generator.Ir;
using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Tests.Declarations;
using GraphCompiler.Tests.Weights;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Symbol;

/// <summary>Every generated module's SymbolJson: it loads, matches the module's optimized IR node for node, and — for
/// the test declarations, which cover every inference op — exported and imported as a SymbolBlock it computes what the
/// generated forward computes, in every bucket.</summary>
public class GeneratedSymbolTests(ITestOutputHelper output)
{
    /// <summary>The interpreter calls the same kernels in the same order with the same arguments: the results agree
    /// to the bit; this allows for nothing more than a reordered reduction.</summary>
    private const double Tolerance = 1e-6;

    private static IEnumerable<Type> GeneratedTypes(Assembly assembly) =>
        assembly.GetTypes().Where(t => typeof(IGraphModule).IsAssignableFrom(t) && t is { IsClass: true, IsAbstract: false }).OrderBy(t => t.Name, StringComparer.Ordinal);

    public static TheoryData<string> AllModules()
    {
        var data = new TheoryData<string>();
        foreach (var t in GeneratedTypes(typeof(LinearModelModule).Assembly).Concat(GeneratedTypes(typeof(MiniLmClassifierModule).Assembly)))
        {
            data.Add(t.AssemblyQualifiedName!);
        }

        return data;
    }

    public static TheoryData<string> TestModules()
    {
        var data = new TheoryData<string>();
        foreach (var t in GeneratedTypes(typeof(LinearModelModule).Assembly))
        {
            data.Add(t.FullName!);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(AllModules))]
    public void SymbolJsonLoadsAndMatchesTheOptimizedIr(string typeName)
    {
        // Read statically: no module (or its weights) is built for this.
        var type = Type.GetType(typeName, throwOnError: true)!;
        var json = (string)type.GetProperty("SymbolJson", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
        // An int8 module's symbol is its int8 graph; an fp32 module's its optimized inference graph.
        var int8 = type.Name.EndsWith("Int8Module", StringComparison.Ordinal);
        var ir = IrText.Parse((string)type.GetMethod("IrText", BindingFlags.Public | BindingFlags.Static)!.Invoke(null, new object[] { int8 ? IrStage.Int8 : IrStage.Optimized })!);
        var buckets = (IReadOnlyList<StaticShapeBucket>)type.GetProperty("Buckets", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
        var name = (string)type.GetField("Name")!.GetRawConstantValue()!;

        var symbol = SymbolFile.Parse(json, type.Name + ".SymbolJson");

        Assert.Equal(name, symbol.Model);
        Assert.Equal(int8 ? "int8" : ir.Nodes.Any(n => n.Op == "param" && n.Type.Element == ElementType.F64) ? "fp64" : "fp32", symbol.Precision);
        Assert.Equal(buckets.Select(b => new SymbolBucket(b.Batch, b.Seq)), symbol.Buckets);
        Assert.Equal(ir.Inputs.Select(n => new SymbolArgument(n.Attr("name")!, n.Id)), symbol.Arguments);
        Assert.Equal(ir.Outputs, symbol.Heads.Select(h => h.Node));
        SymbolTestKit.AssertSameNodes(ir, symbol);
        Assert.Equal(ir.Nodes.GroupBy(n => n.Op).OrderBy(g => g.Key).Select(g => (g.Key, g.Count())), symbol.Nodes.GroupBy(n => n.Op).OrderBy(g => g.Key).Select(g => (g.Key, g.Count())));
        // What the generator spends on it: the writer again on the same graph.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var rewritten = GraphCompiler.Generator.Emit.SymbolWriter.Write(ir, name, symbol.Precision, buckets.Select(b => (b.Batch, b.Seq)), symbol.Heads.Select(h => h.Name).ToList());
        var writeMs = clock.Elapsed.TotalMilliseconds;
        Assert.Equal(json, rewritten.TrimEnd('\n')); // the embedded raw string drops the final newline
        output.WriteLine($"{symbol.Model}: {symbol.Nodes.Count} nodes, {json.Length:N0} characters, written in {writeMs:F1} ms");
    }

    [Fact]
    public void HeadsAreNamedFromTheDeclarationsReturn()
    {
        Assert.Equal(new[] { "sequence", "pooled" }, SymbolFile.Parse(MiniLmEncoderModule.SymbolJson, "encoder").Heads.Select(h => h.Name));
        Assert.Equal(new[] { "output0" }, SymbolFile.Parse(MiniLmClassifierModule.SymbolJson, "classifier").Heads.Select(h => h.Name));
    }

    [Theory]
    [MemberData(nameof(TestModules))]
    public void ImportedSymbolBlockComputesWhatTheGeneratedModuleDoes(string typeName)
    {
        var type = typeof(LinearModelModule).Assembly.GetType(typeName, throwOnError: true)!;
        using var dir = new TempDir();
        manual_seed(11);
        using var module = (nn.Module)Activator.CreateInstance(type, new object?[] { null })!;
        module.eval();
        var graphModule = (IGraphModule)module;
        var (symbolFile, paramsFile) = ModelExport.Export(module, dir.File("model"));
        var graph = SymbolFile.Load(symbolFile);
        using var block = SymbolBlock.Imports(symbolFile, graph.Arguments.Select(a => a.Name).ToArray(), paramsFile);
        Assert.Equal(graph.Heads.Select(h => h.Name), block.OutputNames);

        var seed = 0;
        foreach (var bucket in graphModule.Buckets)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var inputs = SymbolTestKit.RandomInputs(graph, bucket, seed++);
            var expected = SymbolTestKit.Forward(module, inputs);
            var actual = block.Run(inputs);
            Assert.Equal(expected.Length, actual.Length);
            for (var i = 0; i < expected.Length; i++)
            {
                var diff = SymbolTestKit.MaxAbsDiff(expected[i], actual[i]);
                output.WriteLine($"{graphModule.ModelName} {bucket} output {i}: max |Δ| {diff:E2}");
                Assert.True(diff <= Tolerance, $"{graphModule.ModelName} {bucket} output {i} ({graph.Heads[i].Name}) differs by {diff:E2}");
            }
        }
    }
}
