using GraphCompiler.Benchmarks.Peers;
using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime.Weights;
using TorchSharp;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Parity;

/// <summary>bert_12_768_12 and bert_24_1024_16 (no public weights here) against a BERT built from TorchSharp's stock
/// modules with the same random weights, in eval mode.</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
[Trait(VectorWidths.Category, VectorWidths.Models)]
public class StockBertParityTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    [Fact]
    public void Parity_Bert12EqualsStockModules() =>
        Check(() => new Bert12ClassifierModule(), layers: 12, hidden: 768, heads: 12, ffn: 3072, seq: 64);

    [Fact]
    public void Parity_Bert24EqualsStockModules() =>
        Check(() => new Bert24ClassifierModule(), layers: 24, hidden: 1024, heads: 16, ffn: 4096, seq: 32);

    private void Check(Func<nn.Module<Tensor, Tensor, Tensor, Tensor>> create, int layers, int hidden, int heads, int ffn, int seq)
    {
        manual_seed(1234);
        using var generated = create();
        generated.eval();
        // Random everything (biases and LayerNorm gains too), so a swapped or skipped parameter shows.
        using (no_grad())
        {
            foreach (var (name, p) in generated.named_parameters())
            {
                using var noise = randn_like(p);
                p.copy_(name.EndsWith("LayerNorm.weight", StringComparison.Ordinal) ? noise * 0.1 + 1.0 : noise * 0.05);
            }
        }

        var weights = WeightLoader.CheckpointTensors(generated).ToDictionary(kv => kv.Key, kv => kv.Value);
        using var stock = new StockBert(layers, hidden, heads, ffn);
        stock.LoadFrom(weights);
        stock.eval();

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = randint(0, 30522, new long[] { 32, seq });
        var types = (rand(32, seq) > 0.5).to(ScalarType.Int64);
        var lengths = randint(2, seq + 1, new long[] { 32 });
        var expected = stock.call(ids, types, lengths);
        var actual = generated.call(ids, types, lengths);
        var diff = (expected - actual).abs().max().item<float>();
        output.WriteLine($"{layers} layers, 32×{seq}: max |Δ| logits {diff:E2} (|logits| ≤ {expected.abs().max().item<float>():F3})");
        Assert.True(diff <= Tolerance, $"generated vs stock-module BERT differ by {diff:E2} > {Tolerance}");
    }
}
