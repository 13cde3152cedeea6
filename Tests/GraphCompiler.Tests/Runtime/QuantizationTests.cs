using GraphCompiler.ModelDefs;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Quantization;
using GraphCompiler.Tests.Declarations;
using GraphCompiler.Tests.Infrastructure;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Runtime;

/// <summary>The generated int8 variant against its fp32 module: calibration through ForwardObserved, FromFloat, Static
/// and Dynamic activation scales, its guards, and the pretrained MiniLM classifier on MRPC dev pairs.</summary>
[Collection(TorchRngCollection.Name)]
[Trait(VectorWidths.Category, VectorWidths.Models)]
public class QuantizationTests(ITestOutputHelper output)
{
    // Relative error ‖int8 − fp32‖ / ‖fp32‖, measured on the small model (weights ~ N(0, 1/in), O(1) activations) for
    // seeds 1–5 and 7: sequence output 1.25–1.58 % (static, max|x|/127 scales from two batches) and 1.28–1.51 %
    // (dynamic); logits 0.4–5.2 % (a [4, 2] tensor with a small norm, so noisier). Per-tensor int8 has a step of
    // max|x|/127 per GEMM input and seven GEMMs add their errors up. The bounds are ~2× the worst seen; a broken scale
    // (off by 2×, per-row instead of per-column, missing bias) gives tens of percent.
    private const double SequenceTolerance = 0.03;
    private const double LogitsTolerance = 0.10;

    /// <summary>Min/max calibration: max|x| per slot over every observed batch; scale = max/127.</summary>
    private sealed class MaxAbsObserver : IActivationObserver
    {
        public Dictionary<string, float> MaxAbs { get; } = new(StringComparer.Ordinal);

        public List<(string Slot, string Kind)> Calls { get; } = new();

        public void Observe(string slot, string kind, Tensor value)
        {
            Calls.Add((slot, kind));
            var max = value.abs().max().item<float>();
            MaxAbs[slot] = Math.Max(MaxAbs.GetValueOrDefault(slot), max);
        }

        public Dictionary<string, float> Scales() => MaxAbs.ToDictionary(kv => kv.Key, kv => kv.Value / 127f, StringComparer.Ordinal);
    }

    private static QuantizedClassifierModule SmallModel()
    {
        manual_seed(7);
        var model = new QuantizedClassifierModule();
        using (no_grad())
        {
            // BERT's init (std 0.02) leaves GEMM outputs tiny next to the residual path, hiding quantization error:
            // use fan-in scaled weights so every GEMM matters.
            foreach (var (name, p) in model.named_parameters())
            {
                if (p.dim() == 2 && !name.StartsWith("embeddings.", StringComparison.Ordinal))
                {
                    p.normal_(0, 1 / Math.Sqrt(p.shape[1]));
                }
                else if (name.EndsWith(".bias", StringComparison.Ordinal))
                {
                    p.normal_(0, 0.1);
                }
                else if (name.StartsWith("embeddings.", StringComparison.Ordinal) && p.dim() == 2)
                {
                    p.normal_(0, 1);
                }
            }
        }

        model.eval();
        return model;
    }

    private static (Tensor Ids, Tensor Types, Tensor Lengths) Inputs(int seed, int seq)
    {
        var generator = new torch.Generator((ulong)seed);
        var ids = randint(1, 50, new long[] { 4, seq }, generator: generator);
        var types = randint(0, 2, new long[] { 4, seq }, generator: generator);
        var lengths = randint(seq / 2, seq + 1, new long[] { 4 }, generator: generator);
        return (ids, types, lengths);
    }

    /// <summary>forward without autograd, as ForwardObserved runs: with it, attention takes libtorch's kernel instead of
    /// the inference one (CpuAttention), which rounds differently.</summary>
    private static (Tensor, Tensor) InferenceForward(QuantizedClassifierModule model, Tensor ids, Tensor types, Tensor lengths)
    {
        using var _ = no_grad();
        return model.forward(ids, types, lengths);
    }

    private static bool Same(Tensor a, Tensor b) => a.eq(b).all().item<bool>();

    private static double RelativeError(Tensor actual, Tensor expected) =>
        (actual - expected).norm().item<float>() / expected.norm().item<float>();

    [Fact]
    public void Int8_SmallModelStaticAndDynamicCloseToFp32()
    {
        using var scope = NewDisposeScope();
        using var model = SmallModel();
        var observer = new MaxAbsObserver();
        foreach (var (seed, seq) in new[] { (1, 16), (2, 8) })
        {
            var (ids, types, lengths) = Inputs(seed, seq);
            var (observedSeq, observedLogits) = model.ForwardObserved(ids, types, lengths, observer);
            var (seqOut, logits) = InferenceForward(model, ids, types, lengths);
            // Observing changes nothing: the calibration graph is the inference graph plus pass-through nodes.
            Assert.True(Same(observedSeq, seqOut) && Same(observedLogits, logits), "ForwardObserved differs from forward");
        }

        // Every slot once per batch, in graph order, with its kind; the excluded GEMM and the pooler/classifier are absent.
        var slots = QuantizedClassifierModule.QuantizationSlots;
        Assert.Equal(slots.Select(s => (s.Slot, s.Kind)).Concat(slots.Select(s => (s.Slot, s.Kind))), observer.Calls);
        Assert.Equal(new[] { "layer_norm_output", "attention_output", "layer_norm_output", "gelu_output" }, slots.Take(4).Select(s => s.Kind));
        Assert.Equal(7, slots.Count);
        Assert.DoesNotContain(slots, s => s.Slot.StartsWith("encoder.layer.1.output.", StringComparison.Ordinal) || s.Slot.StartsWith("pooler", StringComparison.Ordinal) || s.Slot == "classifier");
        Assert.Equal(new QuantizationSlot("encoder.layer.0.attention.self.query_key_value", ActivationKinds.LayerNormOutput, "encoder.layer.0.attention.self.query_key_value.weight", 32, 96), slots[0]);

        using var int8 = QuantizedClassifierInt8Module.FromFloat(model, observer.Scales());
        Assert.Equal(ActivationQuantization.Static, int8.Mode);
        var (ids2, types2, lengths2) = Inputs(1, 16);
        var (expectedSeq, expectedLogits) = model.forward(ids2, types2, lengths2);
        var (staticSeq, staticLogits) = int8.forward(ids2, types2, lengths2);
        int8.Mode = ActivationQuantization.Dynamic;
        var (dynamicSeq, dynamicLogits) = int8.forward(ids2, types2, lengths2);

        var errors = new[]
        {
            ("static sequence", RelativeError(staticSeq, expectedSeq), SequenceTolerance),
            ("static logits", RelativeError(staticLogits, expectedLogits), LogitsTolerance),
            ("dynamic sequence", RelativeError(dynamicSeq, expectedSeq), SequenceTolerance),
            ("dynamic logits", RelativeError(dynamicLogits, expectedLogits), LogitsTolerance),
        };
        foreach (var (what, error, tolerance) in errors)
        {
            output.WriteLine($"{what}: relative error {error:P2}");
            Assert.True(error <= tolerance, $"{what}: relative error {error:P2} > {tolerance:P0}");
            // It did quantize: an int8 path equal to fp32 would mean the qlinear GEMMs were skipped.
            Assert.True(error > 1e-4, $"{what}: int8 output equals fp32 ({error:E2})");
        }

        Assert.False(Same(staticSeq, dynamicSeq), "Static and Dynamic modes gave identical outputs");
    }

    [Fact]
    public void Int8_ModuleHoldsInt8BuffersAndSharesTheModelName()
    {
        using var model = SmallModel();
        using var int8 = QuantizedClassifierInt8Module.FromFloat(model, null);
        IGraphModule graph = int8;
        Assert.Equal(((IGraphModule)model).ModelName, graph.ModelName);
        Assert.Equal("fp32", ((IGraphModule)model).Precision);
        Assert.Equal("int8", graph.Precision);
        Assert.Equal(ActivationQuantization.Dynamic, int8.Mode);

        var buffers = int8.named_buffers().ToDictionary(b => b.name, b => b.buffer);
        var parameters = int8.named_parameters().Select(p => p.name).ToHashSet();
        var slot = QuantizedClassifierModule.QuantizationSlots[0];
        Assert.Equal(ScalarType.Int8, buffers[slot.WeightName].dtype);
        Assert.Equal(new long[] { slot.OutFeatures, slot.InFeatures }, buffers[slot.WeightName].shape);
        Assert.Equal(new long[] { slot.OutFeatures }, buffers[slot.Slot + ".weight_scale"].shape);
        Assert.Empty(buffers[slot.Slot + ".input_scale"].shape);
        Assert.DoesNotContain(slot.WeightName, parameters);
        Assert.Contains("encoder.layer.1.output.dense.weight", parameters); // excluded: fp32
        Assert.Contains("classifier.weight", parameters);

        // The weights are the fp32 ones, quantized per channel: dequantized, each within half a step of the original.
        var original = model.named_parameters().Single(p => p.name == slot.WeightName).parameter;
        var dequantized = buffers[slot.WeightName].to_type(ScalarType.Float32) * buffers[slot.Slot + ".weight_scale"].unsqueeze(1);
        var halfStep = buffers[slot.Slot + ".weight_scale"].unsqueeze(1) / 2 + 1e-7;
        Assert.True((dequantized - original).abs().le(halfStep).all().item<bool>(), "dequantized weights are off by more than half a step");

        // Embedding tables likewise, per row; the position table (read by rows) stays fp32.
        const string Words = "embeddings.word_embeddings";
        Assert.Equal(ScalarType.Int8, buffers[Words + ".weight"].dtype);
        Assert.Equal(new long[] { 50, 32 }, buffers[Words + ".weight"].shape);
        Assert.Equal(new long[] { 50 }, buffers[Words + ".weight_scale"].shape);
        Assert.Equal(ScalarType.Int8, buffers["embeddings.token_type_embeddings.weight"].dtype);
        Assert.Contains("embeddings.position_embeddings.weight", parameters);
        var table = model.named_parameters().Single(p => p.name == Words + ".weight").parameter;
        var tableScale = buffers[Words + ".weight_scale"].unsqueeze(1);
        Assert.True((buffers[Words + ".weight"].to_type(ScalarType.Float32) * tableScale - table).abs().le(tableScale / 2 + 1e-7).all().item<bool>(),
            "dequantized table rows are off by more than half a step");

        Assert.Contains("qlinear", QuantizedClassifierInt8Module.IrText(IrStage.Int8));
        Assert.Contains("qembedding", QuantizedClassifierInt8Module.IrText(IrStage.Int8));
        Assert.Contains("observe", graph.IrText(IrStage.Calibration));
        Assert.Equal("", EncoderModelModule.IrText(IrStage.Int8)); // no [Quantize]: no such stages
        Assert.Equal("", EncoderModelModule.IrText(IrStage.Calibration));
    }

    [Fact]
    public void Int8_GuardsNameWhatIsWrong()
    {
        using var model = SmallModel();
        var scales = QuantizedClassifierModule.QuantizationSlots.ToDictionary(s => s.Slot, _ => 0.05f);
        var missing = QuantizedClassifierModule.QuantizationSlots[2].Slot;
        scales.Remove(missing);
        var ex = Assert.Throws<ArgumentException>(() => QuantizedClassifierInt8Module.FromFloat(model, scales));
        Assert.Contains($"no input scale for slot '{missing}'", ex.Message);

        scales[missing] = 0f;
        ex = Assert.Throws<ArgumentException>(() => QuantizedClassifierInt8Module.FromFloat(model, scales));
        Assert.Contains($"the input scale of slot '{missing}' is 0", ex.Message);

        scales[missing] = 0.05f;
        scales["encoder.layer.1.output.dense"] = 0.05f; // excluded by option: not a slot
        ex = Assert.Throws<ArgumentException>(() => QuantizedClassifierInt8Module.FromFloat(model, scales));
        Assert.Contains("unknown slots 'encoder.layer.1.output.dense'", ex.Message);

        using var dynamicOnly = QuantizedClassifierInt8Module.FromFloat(model, null);
        var modeError = Assert.Throws<InvalidOperationException>(() => dynamicOnly.Mode = ActivationQuantization.Static);
        Assert.Contains("without input scales", modeError.Message);

        dynamicOnly.train();
        var (ids, types, lengths) = Inputs(3, 8);
        var trainError = Assert.Throws<InvalidOperationException>(() => dynamicOnly.forward(ids, types, lengths));
        Assert.Contains("'num_quantized' (int8) is inference-only", trainError.Message);
        dynamicOnly.eval();
        var bucketError = Assert.Throws<ArgumentException>(() => dynamicOnly.forward(ids[..2], types[..2], lengths[..2]));
        Assert.Contains("no forward for batch 2", bucketError.Message);
    }

    [Fact]
    public void Int8_PretrainedMiniLmAgreesWithFp32OnMrpcDev()
    {
        using var zoo = ModelZoo.GetModel("minilm", pretrained: true);
        var model = (MiniLmClassifierModule)zoo.Module;
        model.eval();
        var tokenizer = zoo.Vocabulary.CreateTokenizer();
        var batches = Mrpc.Pairs("dev").Take(128).Chunk(32).Select(chunk =>
        {
            var encoded = chunk.Select(p =>
            {
                var a = tokenizer.EncodeToIds(p.A, addSpecialTokens: false);
                var b = tokenizer.EncodeToIds(p.B, addSpecialTokens: false);
                return (Ids: tokenizer.BuildInputsWithSpecialTokens(a, b), Types: tokenizer.CreateTokenTypeIdsFromSequences(a, b));
            }).ToList();
            var seq = MiniLmClassifierModule.Buckets.Select(x => x.Seq).Where(s => s >= encoded.Max(e => e.Ids.Count)).Min();
            var ids = zeros(32, seq, dtype: ScalarType.Int64);
            var types = zeros(32, seq, dtype: ScalarType.Int64);
            for (var i = 0; i < encoded.Count; i++)
            {
                ids[i, ..encoded[i].Ids.Count] = tensor(encoded[i].Ids.Select(v => (long)v).ToArray());
                types[i, ..encoded[i].Types.Count] = tensor(encoded[i].Types.Select(v => (long)v).ToArray());
            }

            return (Ids: ids, Types: types, Lengths: tensor(encoded.Select(e => (long)e.Ids.Count).ToArray()));
        }).ToList();

        // Calibrate on the first two batches (64 pairs), evaluate on the next 64.
        var observer = new MaxAbsObserver();
        foreach (var (ids, types, lengths) in batches.Take(2))
        {
            model.ForwardObserved(ids, types, lengths, observer).Dispose();
        }

        using var int8 = MiniLmClassifierInt8Module.FromFloat(model, observer.Scales());

        // The classifier head is not in the checkpoint, and an untrained head's margins are tiny, so one random head
        // decides few pairs by much: count the agreement over 8 heads (512 decisions), each set in both models.
        var heads = new torch.Generator(seed: 11);
        var fp32Head = model.named_parameters().Where(p => p.name.StartsWith("classifier.", StringComparison.Ordinal)).ToDictionary(p => p.name, p => p.parameter);
        var int8Head = int8.named_parameters().Where(p => fp32Head.ContainsKey(p.name)).ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(fp32Head.Keys.Order(), int8Head.Keys.Order());
        var agree = 0;
        var total = 0;
        var worst = 0.0;
        for (var h = 0; h < 8; h++)
        {
            using (no_grad())
            {
                foreach (var (name, parameter) in fp32Head)
                {
                    using var drawn = normal(0, ParameterInit.NormalStd, parameter.shape, generator: heads);
                    parameter.copy_(drawn);
                    int8Head[name].copy_(drawn);
                }
            }

            foreach (var (ids, types, lengths) in batches.Skip(2))
            {
                using var expected = model.forward(ids, types, lengths);
                using var actual = int8.forward(ids, types, lengths);
                agree += (int)expected.argmax(1).eq(actual.argmax(1)).sum().item<long>();
                total += (int)expected.shape[0];
                worst = Math.Max(worst, (actual - expected).abs().max().item<float>());
            }
        }

        var rate = (double)agree / total;
        output.WriteLine($"int8 (static, min/max scales from 64 dev pairs) vs fp32 on 64 other dev pairs × 8 random heads: argmax agreement {rate:P1}, max |Δlogit| {worst:E2}");
        Assert.Equal(8 * 64, total);
        Assert.True(rate >= 0.95, $"argmax agreement {rate:P1} < 95 %");
    }
}
