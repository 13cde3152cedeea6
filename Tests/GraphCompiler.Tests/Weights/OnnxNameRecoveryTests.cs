using System.Diagnostics;
using Google.Protobuf;
using GraphCompiler.ModelDefs;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime.Weights;
using Xunit;
using Xunit.Abstractions;
using static GraphCompiler.Tests.Weights.WeightTestKit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Weights;

/// <summary>Unnamed MatMul weights of an exported ONNX graph come back under their HF names, as [out, in].</summary>
public sealed class OnnxNameRecoveryTests(ITestOutputHelper output)
{
    [Fact]
    public void MiniLmPackage_YieldsExactlyTheEncoderCheckpointNamesAndShapes()
    {
        var model = MiniLmPackage.Read(MiniLmPackage.ModelResource);
        var clock = Stopwatch.StartNew();
        using var set = OnnxWeights.Read(model, MiniLmPackage.ModelResource);
        output.WriteLine($"OnnxWeights.Read of the MiniLM model ({model.Length:N0} bytes): {clock.Elapsed.TotalMilliseconds:F0} ms, {set.Count} tensors");

        using var encoder = new MiniLmEncoderModule();
        var expected = WeightLoader.CheckpointShapes(encoder);
        var missing = expected.Keys.Where(k => !set.ContainsKey(k)).ToList();
        var extra = set.Keys.Where(k => !expected.ContainsKey(k)).ToList();
        Assert.True(missing.Count == 0, "not recovered: " + string.Join(", ", missing));
        Assert.Equal(new[] { "embeddings.position_ids" }, extra);
        foreach (var (name, shape) in expected)
        {
            Assert.True(shape.SequenceEqual(set[name].shape), $"{name}: [{string.Join(",", set[name].shape)}], model [{string.Join(",", shape)}]");
            Assert.Equal(ScalarType.Float32, set[name].dtype);
        }

        // Loads with the zoo's options; the position ids are the one ignorable extra.
        var report = WeightLoader.Load(encoder, set, ModelZoo.PretrainedOptions(null));
        Assert.Equal(expected.Count, report.Loaded.Count);
        Assert.Equal(new[] { "embeddings.position_ids" }, report.Ignored);
    }

    [Theory]
    [InlineData("encoder.layer.0.attention.self.query", 384, 384)]
    [InlineData("encoder.layer.3.intermediate.dense", 1536, 384)]
    [InlineData("encoder.layer.5.output.dense", 384, 1536)]
    public void MiniLmPackage_RecoveredWeightIsTheTransposedMatMulInitializer(string layer, long outFeatures, long inFeatures)
    {
        var model = MiniLmPackage.Read(MiniLmPackage.ModelResource);
        var (nodes, inits) = RawGraph(model);

        // Independently of the reader: bias → the Add consuming it → the MatMul feeding that Add → its weight.
        var add = nodes.Single(n => n.Op == "Add" && n.Inputs.Contains(layer + ".bias"));
        var matmul = nodes.Single(n => n.Op == "MatMul" && add.Inputs.Contains(n.Outputs[0]));
        var raw = inits[matmul.Inputs[1]];
        Assert.DoesNotContain('.', matmul.Inputs[1]); // really unnamed in the export
        Assert.Equal(new[] { inFeatures, outFeatures }, raw.Dims);

        using var set = OnnxWeights.Read(model, MiniLmPackage.ModelResource);
        var weight = set[layer + ".weight"];
        Assert.Equal(new[] { outFeatures, inFeatures }, weight.shape);
        using var stored = tensor(raw.Floats, raw.Dims);
        using var expected = stored.t();
        Assert.True(RoundTripTests.Same(expected, weight), $"{layer}.weight is not the transpose of initializer '{matmul.Inputs[1]}'");
        Assert.False(outFeatures == inFeatures && RoundTripTests.Same(stored, weight), "square weight left untransposed");
    }

    [Fact]
    public void HandBuiltGraph_UnnamedMatMulWeightBecomesFcWeightTransposed()
    {
        var w = new float[] { 1, 2, 3, 4, 5, 6 }; // [in=3, out=2]
        var graph = OnnxGraph(
            new[]
            {
                OnnxNode("MatMul", new[] { "input", "17" }, new[] { "mm_out" }),
                OnnxNode("Add", new[] { "fc.bias", "mm_out" }, new[] { "output" }),
            },
            new[]
            {
                OnnxFloatInitializer("17", new long[] { 3, 2 }, w),
                OnnxFloatInitializer("fc.bias", new long[] { 2 }, new float[] { 0.5f, -0.5f }),
                OnnxFloatInitializer("onnx::Constant_3", new long[] { 1 }, new float[] { 9 }),
            });
        using var set = OnnxWeights.Read(OnnxModel(graph), "tiny.onnx");
        Assert.Equal(new[] { "fc.bias", "fc.weight" }, set.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(new long[] { 2, 3 }, set["fc.weight"].shape);
        Assert.Equal(new float[] { 1, 3, 5, 2, 4, 6 }, set["fc.weight"].data<float>().ToArray());
        Assert.Equal(new[] { 0.5f, -0.5f }, set["fc.bias"].data<float>().ToArray());
    }

    [Fact]
    public void HandBuiltGraph_UnnamedWeightWithoutABiasIsNotGuessed()
    {
        // A MatMul whose result feeds nothing named: no name can be recovered, so the constant is not a parameter.
        var graph = OnnxGraph(
            new[] { OnnxNode("MatMul", new[] { "input", "17" }, new[] { "output" }) },
            new[] { OnnxFloatInitializer("17", new long[] { 3, 2 }, new float[6]) });
        using var set = OnnxWeights.Read(OnnxModel(graph), "tiny.onnx");
        Assert.Empty(set);
    }

    private sealed record RawNode(string Op, List<string> Inputs, List<string> Outputs);

    private sealed record RawInit(long[] Dims, float[] Floats);

    /// <summary>The model's nodes and float raw_data initializers, parsed here without the reader under test.</summary>
    private static (List<RawNode>, Dictionary<string, RawInit>) RawGraph(byte[] model)
    {
        ByteString? graph = null;
        var m = new CodedInputStream(model);
        uint tag;
        while ((tag = m.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == 7)
            {
                graph = m.ReadBytes();
            }
            else
            {
                m.SkipLastField();
            }
        }

        Assert.NotNull(graph);
        var nodes = new List<RawNode>();
        var inits = new Dictionary<string, RawInit>(StringComparer.Ordinal);
        var g = graph.CreateCodedInput();
        while ((tag = g.ReadTag()) != 0)
        {
            var field = WireFormat.GetTagFieldNumber(tag);
            if (field == 1)
            {
                var node = new RawNode("", new(), new());
                var op = "";
                var n = g.ReadBytes().CreateCodedInput();
                while ((tag = n.ReadTag()) != 0)
                {
                    switch (WireFormat.GetTagFieldNumber(tag))
                    {
                        case 1: node.Inputs.Add(n.ReadString()); break;
                        case 2: node.Outputs.Add(n.ReadString()); break;
                        case 4: op = n.ReadString(); break;
                        default: n.SkipLastField(); break;
                    }
                }

                nodes.Add(node with { Op = op });
            }
            else if (field == 5)
            {
                var dims = new List<long>();
                var name = "";
                byte[]? raw = null;
                var t = g.ReadBytes().CreateCodedInput();
                while ((tag = t.ReadTag()) != 0)
                {
                    switch (WireFormat.GetTagFieldNumber(tag))
                    {
                        case 1 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.Varint: dims.Add(t.ReadInt64()); break;
                        case 1:
                            var packed = t.ReadBytes().CreateCodedInput();
                            while (!packed.IsAtEnd)
                            {
                                dims.Add(packed.ReadInt64());
                            }

                            break;
                        case 8: name = t.ReadString(); break;
                        case 9: raw = t.ReadBytes().ToByteArray(); break;
                        default: t.SkipLastField(); break;
                    }
                }

                if (raw is not null && raw.Length % 4 == 0)
                {
                    var floats = new float[raw.Length / 4];
                    Buffer.BlockCopy(raw, 0, floats, 0, raw.Length);
                    inits[name] = new RawInit(dims.ToArray(), floats);
                }
            }
            else
            {
                g.SkipLastField();
            }
        }

        return (nodes, inits);
    }
}
