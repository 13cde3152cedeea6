using System.Diagnostics;
using GraphCompiler.ModelDefs;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Runtime.Weights;
using GraphCompiler.Tests.Infrastructure;
using GraphCompiler.Tests.Weights;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Symbol;

/// <summary>The pretrained MiniLM classifier exported once (symbol + params), shared by the tests below.</summary>
public sealed class MiniLmExportFixture : IDisposable
{
    public MiniLmExportFixture()
    {
        Zoo = ModelZoo.GetModel("minilm", pretrained: true);
        Zoo.Module.eval();
        var clock = Stopwatch.StartNew();
        (SymbolFile, ParamsFile) = ModelExport.Export(Zoo.Module, Dir.File("minilm"));
        ExportSeconds = clock.Elapsed.TotalSeconds;
    }

    public ZooModel Zoo { get; }

    public TempDir Dir { get; } = new();

    public string SymbolFile { get; }

    public string ParamsFile { get; }

    public double ExportSeconds { get; }

    public void Dispose()
    {
        Zoo.Dispose();
        Dir.Dispose();
    }
}

/// <summary>Export then import of the MiniLM classifier: the SymbolBlock equals the generated module on real MRPC dev
/// batches in the 32×32 and 32×128 buckets (and so does the encoder, on every hidden state), and the params file is
/// plain safetensors.</summary>
public class MiniLmExportTests(MiniLmExportFixture fixture, ITestOutputHelper output) : IClassFixture<MiniLmExportFixture>
{
    private const double Tolerance = 1e-5;

    private static readonly string[] InputNames = { "inputIds", "tokenTypes", "validLength" };

    [Fact]
    public void ImportedClassifierEqualsGeneratedModuleOnMrpcDev()
    {
        var clock = Stopwatch.StartNew();
        using var block = SymbolBlock.Imports(fixture.SymbolFile, InputNames, fixture.ParamsFile);
        using var permuted = SymbolBlock.Imports(fixture.SymbolFile, new[] { "validLength", "inputIds", "tokenTypes" }, fixture.ParamsFile);
        output.WriteLine($"export {fixture.ExportSeconds:F2} s, import {clock.Elapsed.TotalSeconds:F2} s, params {new FileInfo(fixture.ParamsFile).Length / 1e6:F1} MB");
        Assert.Equal(new[] { "output0" }, block.OutputNames);
        var model = (MiniLmClassifierModule)fixture.Zoo.Module;
        var tokenizer = fixture.Zoo.Vocabulary.CreateTokenizer();

        // Two different dev batches: pairs 0–31 truncated to 32 tokens, pairs 32–63 padded to 128.
        var pairs = Mrpc.Pairs("dev").Take(64).ToList();
        foreach (var (seq, batchPairs) in new[] { (32, pairs.Take(32)), (128, pairs.Skip(32)) })
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var (ids, types, lengths) = Encode(tokenizer, batchPairs.ToList(), seq);
            clock.Restart();
            var expected = model.forward(ids, types, lengths);
            var generatedSeconds = clock.Elapsed.TotalSeconds;
            clock.Restart();
            var actual = Assert.Single(block.Run(ids, types, lengths));
            var interpretedSeconds = clock.Elapsed.TotalSeconds;
            var diff = SymbolTestKit.MaxAbsDiff(expected, actual);
            output.WriteLine($"32×{seq}: max |Δ| logits {diff:E2} (|logits| up to {expected.abs().max().item<float>():F3}); generated {generatedSeconds:F3} s, interpreted {interpretedSeconds:F3} s");
            Assert.True(diff <= Tolerance, $"32×{seq}: the SymbolBlock's logits differ from the generated module's by {diff:E2} > {Tolerance}");

            if (seq == 32)
            {
                // Inputs named in another order are taken in that order.
                var reordered = Assert.Single(permuted.Run(lengths, ids, types));
                Assert.True(SymbolTestKit.MaxAbsDiff(expected, reordered) <= Tolerance, "a block imported with the inputs in another order computes something else");
            }
        }
    }

    [Fact]
    public void ParamsFileIsSafeTensorsWithEveryGraphTensor()
    {
        var graph = global::GraphCompiler.Runtime.Symbol.SymbolFile.Load(fixture.SymbolFile);
        Assert.Equal(MiniLmClassifierModule.SymbolJson, File.ReadAllText(fixture.SymbolFile));
        Assert.DoesNotContain(Directory.GetFiles(fixture.Dir.Root), f => f.Contains(".tmp-", StringComparison.Ordinal));

        using var set = SafeTensors.Read(fixture.ParamsFile);
        Assert.Equal(SymbolParams.Names(graph).Order(StringComparer.Ordinal), set.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(ModelExport.ParamsFormat, set.Metadata["format"]);
        Assert.Equal("minilm", set.Metadata["model"]);
        Assert.Equal("fp32", set.Metadata["precision"]);
        var parameters = fixture.Zoo.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, tensor) in set)
        {
            Assert.True(parameters[name].detach().eq(tensor).all().item<bool>(), $"tensor '{name}' differs from the module's parameter");
        }

        // Packed q/k/v: the export holds what the graph binds (the packed weight), not the checkpoint's parts.
        var packed = graph.Nodes.Where(n => n.Op == "param" && n.Attrs.ContainsKey("packs")).Select(n => n.Attrs["name"]).ToList();
        Assert.NotEmpty(packed);
        Assert.All(packed, name => Assert.Contains(name, set.Keys));
        output.WriteLine($"{set.Count} tensors, {set.Values.Sum(t => t.numel()):N0} values");
    }

    [Fact]
    public void ImportedEncoderEqualsGeneratedModuleOnEveryHiddenState()
    {
        // The classifier's freshly initialised head gives small logits; the encoder's two heads (every token's hidden
        // state, and the pooled vector) check the whole network at full scale.
        using var zoo = ModelZoo.GetModel("minilm_encoder", pretrained: true);
        zoo.Module.eval();
        using var dir = new TempDir();
        var (symbolFile, paramsFile) = ModelExport.Export(zoo.Module, dir.File("encoder"));
        using var block = SymbolBlock.Imports(symbolFile, InputNames, paramsFile);
        Assert.Equal(new[] { "sequence", "pooled" }, block.OutputNames);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (ids, types, lengths) = Encode(zoo.Vocabulary.CreateTokenizer(), Mrpc.Pairs("dev").Skip(64).Take(32).ToList(), 32);
        var (sequence, pooled) = ((MiniLmEncoderModule)zoo.Module).forward(ids, types, lengths);
        var outputs = block.Run(ids, types, lengths);
        var sequenceDiff = SymbolTestKit.MaxAbsDiff(sequence, outputs[0]);
        var pooledDiff = SymbolTestKit.MaxAbsDiff(pooled, outputs[1]);
        output.WriteLine($"encoder 32×32: max |Δ| sequence {sequenceDiff:E2} (|x| up to {sequence.abs().max().item<float>():F2}), pooled {pooledDiff:E2}");
        Assert.True(sequenceDiff <= Tolerance && pooledDiff <= Tolerance, $"the SymbolBlock differs from the generated encoder: sequence {sequenceDiff:E2}, pooled {pooledDiff:E2}");
    }

    private static (Tensor Ids, Tensor Types, Tensor Lengths) Encode(Microsoft.ML.Tokenizers.BertTokenizer tokenizer, IReadOnlyList<(string Label, string A, string B)> pairs, int seq)
    {
        var n = pairs.Count;
        var ids = new long[n * seq];
        var types = new long[n * seq];
        var lengths = new long[n];
        for (var i = 0; i < n; i++)
        {
            var a = tokenizer.EncodeToIds(pairs[i].A, addSpecialTokens: false);
            var b = tokenizer.EncodeToIds(pairs[i].B, addSpecialTokens: false);
            var pairIds = tokenizer.BuildInputsWithSpecialTokens(a, b);
            var pairTypes = tokenizer.CreateTokenTypeIdsFromSequences(a, b);
            var length = Math.Min(seq, pairIds.Count); // the 32-token bucket truncates (the real pipeline truncates smarter)
            lengths[i] = length;
            for (var j = 0; j < length; j++)
            {
                ids[(i * seq) + j] = pairIds[j];
                types[(i * seq) + j] = pairTypes[j];
            }
        }

        return (tensor(ids, new long[] { n, seq }), tensor(types, new long[] { n, seq }), tensor(lengths));
    }
}
