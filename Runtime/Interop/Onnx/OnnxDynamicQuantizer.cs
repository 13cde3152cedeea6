using System.Globalization;
using Google.Protobuf;
using GraphCompiler.Runtime.Weights;
using static GraphCompiler.Runtime.Onnx.OnnxFields;

namespace GraphCompiler.Runtime.Onnx;

/// <summary>How <see cref="OnnxDynamicQuantizer.Quantize"/> quantizes weights.</summary>
public sealed record OnnxQuantizeOptions
{
    /// <summary>One scale per output column instead of one per tensor (quantize_dynamic's per_channel=True).</summary>
    public bool PerChannel { get; init; }

    /// <summary>Also store Gather tables (embeddings) as int8, dequantized after the lookup, as quantize_dynamic does
    /// by default; without it the embeddings stay fp32 and dominate the file.</summary>
    public bool QuantizeGather { get; init; } = true;
}

/// <summary>What a quantization did.</summary>
public sealed record OnnxQuantizeReport(int MatMulsQuantized, int GathersQuantized, int WeightsQuantized, long InputBytes, long OutputBytes);

/// <summary>The ONNX Runtime peer of our int8 models: rewrites an fp32 ONNX model as
/// onnxruntime.quantization.quantize_dynamic does for MatMul nodes with a constant weight (an initializer, or a
/// Transpose of one, which is how our exporter writes Linear). The activation is quantized at run time by
/// DynamicQuantizeLinear (uint8, asymmetric), the weight ahead of time to int8 (symmetric, zero point 0, scale
/// max|w|/127 per tensor, or per output column), then MatMulInteger → Cast → Mul by the product of the two scales.
/// Gather tables (embeddings) become int8 with a DequantizeLinear after the lookup (per tensor). Everything else in the
/// file is copied field by field, unknown fields included.</summary>
public static class OnnxDynamicQuantizer
{
    private const float Int8Range = 127f;

    private sealed record QuantizedTensor(string Values, string Scale, string ZeroPoint);

    /// <summary>A MatMul's constant weight: the initializer, and whether the MatMul reads it through a Transpose.</summary>
    private sealed record ConstantWeight(OnnxTensorView Initializer, OnnxNodeView? Transpose);

    public static OnnxQuantizeReport Quantize(string inputOnnx, string outputOnnx, OnnxQuantizeOptions? options = null)
    {
        options ??= new OnnxQuantizeOptions();
        var model = OnnxModelReader.Read(inputOnnx);
        var opset = model.Opsets.TryGetValue("", out var v) ? v : model.Opsets.TryGetValue("ai.onnx", out var w) ? w : 0;
        if (opset < 11)
        {
            throw new WeightFileException(inputOnnx, $"imports ai.onnx opset {opset}; dynamic quantization needs DynamicQuantizeLinear (opset 11 or later)");
        }

        var initializers = new Dictionary<string, OnnxTensorView>(StringComparer.Ordinal);
        foreach (var init in model.Initializers)
        {
            initializers.TryAdd(init.Name, init);
        }

        var producers = new Dictionary<string, OnnxNodeView>(StringComparer.Ordinal);
        foreach (var node in model.Nodes)
        {
            foreach (var o in node.Outputs)
            {
                producers[o] = node;
            }
        }

        bool IsFloatInitializer(string name, int rank, out OnnxTensorView tensor) =>
            initializers.TryGetValue(name, out tensor!) && tensor.DataType == OnnxDataType.Float && !tensor.External && (rank < 0 ? tensor.Dims.Length >= 1 : tensor.Dims.Length == rank);

        ConstantWeight? WeightOf(OnnxNodeView n)
        {
            if (n.OpType != "MatMul" || !IsStandard(n) || n.Inputs.Count != 2 || n.Outputs.Count != 1 || initializers.ContainsKey(n.Inputs[0]))
            {
                return null;
            }

            if (IsFloatInitializer(n.Inputs[1], 2, out var direct))
            {
                return new ConstantWeight(direct, null);
            }

            return producers.TryGetValue(n.Inputs[1], out var t) && t.OpType == "Transpose" && IsStandard(t) && t.Inputs.Count == 1
                   && IsFloatInitializer(t.Inputs[0], 2, out var transposed) && Perm(t) is null or [1, 0]
                ? new ConstantWeight(transposed, t)
                : null;
        }

        var matmuls = new Dictionary<OnnxNodeView, ConstantWeight>();
        foreach (var n in model.Nodes)
        {
            if (WeightOf(n) is { } weight)
            {
                matmuls[n] = weight;
            }
        }

        var gathers = model.Nodes.Where(n => options.QuantizeGather && n.OpType == "Gather" && IsStandard(n) && n.Inputs.Count == 2 && n.Outputs.Count == 1
                                             && IsFloatInitializer(n.Inputs[0], -1, out _)).ToHashSet();

        // A Transpose goes when only quantized MatMuls read it; an initializer when only rewritten nodes (and removed
        // Transposes) read it. Anything read elsewhere, or a graph output, stays.
        var readers = model.Nodes.SelectMany(n => n.Inputs.Select((input, i) => (Input: input, Node: n, Index: i))).ToLookup(r => r.Input);
        var removedTransposes = matmuls.Values.Where(m => m.Transpose is not null).Select(m => m.Transpose!).Distinct()
            .Where(t => !model.OutputNames.Contains(t.Outputs[0]) && readers[t.Outputs[0]].All(r => matmuls.ContainsKey(r.Node) && r.Index == 1))
            .ToHashSet();
        bool QuantizedRead((string Input, OnnxNodeView Node, int Index) r) =>
            (matmuls.TryGetValue(r.Node, out var m) && m.Transpose is null && r.Index == 1) || (gathers.Contains(r.Node) && r.Index == 0) || removedTransposes.Contains(r.Node);
        var removed = matmuls.Values.Select(m => m.Initializer.Name).Concat(gathers.Select(g => g.Inputs[0])).Distinct(StringComparer.Ordinal)
            .Where(name => !model.OutputNames.Contains(name) && readers[name].All(QuantizedRead))
            .ToHashSet(StringComparer.Ordinal);

        var added = new List<OnnxTensorProto>();
        var quantizedWeights = new Dictionary<(string, bool, bool), QuantizedTensor>();
        var quantizedActivations = new Dictionary<string, QuantizedTensor>(StringComparer.Ordinal);
        var counter = 0;
        var nodeAt = model.Nodes.ToDictionary(n => n.Field.PayloadStart);
        var initializerAt = model.Initializers.ToDictionary(i => i.Field.PayloadStart);

        QuantizedTensor Weight(OnnxTensorView init, bool transpose, bool perChannel)
        {
            if (!quantizedWeights.TryGetValue((init.Name, transpose, perChannel), out var q))
            {
                q = QuantizeWeight(init, inputOnnx, transpose, perChannel, added, transpose ? "_transposed" : "");
                quantizedWeights[(init.Name, transpose, perChannel)] = q;
            }

            return q;
        }

        var graphBytes = ProtoWriter.Encode(o =>
        {
            foreach (var field in model.Graph.Fields)
            {
                switch (field.Number)
                {
                    case GraphNode:
                        {
                            var node = nodeAt[field.PayloadStart];
                            if (removedTransposes.Contains(node))
                            {
                                break;
                            }

                            var stem = (node.Name.Length > 0 ? node.Name : node.Outputs[0]) + "_" + (counter++).ToString(CultureInfo.InvariantCulture);
                            if (gathers.Contains(node))
                            {
                                var table = Weight(initializers[node.Inputs[0]], transpose: false, perChannel: false);
                                var gathered = stem + "_quantized";
                                WriteWithRenamedData(o, field, table.Values, gathered);
                                WriteNode(o, new OnnxNodeProto("DequantizeLinear", new[] { gathered, table.Scale, table.ZeroPoint }, new[] { node.Outputs[0] }, stem + "_DequantizeLinear", Array.Empty<OnnxAttribute>()));
                                break;
                            }

                            if (!matmuls.TryGetValue(node, out var constant))
                            {
                                ProtoWriter.CopyField(o, field);
                                break;
                            }

                            var activation = node.Inputs[0];
                            if (!quantizedActivations.TryGetValue(activation, out var a))
                            {
                                // One DynamicQuantizeLinear per activation, shared by every MatMul reading it (q, k, v).
                                a = new QuantizedTensor(activation + "_quantized", activation + "_scale", activation + "_zero_point");
                                WriteNode(o, new OnnxNodeProto("DynamicQuantizeLinear", new[] { activation }, new[] { a.Values, a.Scale, a.ZeroPoint }, activation + "_DynamicQuantizeLinear", Array.Empty<OnnxAttribute>()));
                                quantizedActivations[activation] = a;
                            }

                            var q = Weight(constant.Initializer, constant.Transpose is not null, options.PerChannel);
                            var integer = stem + "_MatMulInteger";
                            var cast = stem + "_Cast";
                            var scale = stem + "_scale";
                            WriteNode(o, new OnnxNodeProto("MatMulInteger", new[] { a.Values, q.Values, a.ZeroPoint, q.ZeroPoint }, new[] { integer }, integer, Array.Empty<OnnxAttribute>()));
                            WriteNode(o, new OnnxNodeProto("Cast", new[] { integer }, new[] { cast }, cast, new[] { OnnxAttribute.Int("to", OnnxDataType.Float) }));
                            WriteNode(o, new OnnxNodeProto("Mul", new[] { a.Scale, q.Scale }, new[] { scale }, scale, Array.Empty<OnnxAttribute>()));
                            WriteNode(o, new OnnxNodeProto("Mul", new[] { cast, scale }, new[] { node.Outputs[0] }, stem + "_output", Array.Empty<OnnxAttribute>()));
                            break;
                        }

                    case GraphInitializer when removed.Contains(initializerAt[field.PayloadStart].Name):
                        break;
                    case GraphInput when removed.Contains(field.Message().String(ValueInfoName)):
                        break; // old IR versions list initializers as inputs too
                    default:
                        ProtoWriter.CopyField(o, field);
                        break;
                }
            }

            foreach (var t in added)
            {
                ProtoWriter.Message(o, GraphInitializer, t.WriteTo);
            }
        });

        ProtoWriter.WriteAtomically(outputOnnx, o =>
        {
            foreach (var field in model.Model.Fields)
            {
                if (field.Number == ModelGraph)
                {
                    ProtoWriter.Bytes(o, ModelGraph, graphBytes);
                }
                else
                {
                    ProtoWriter.CopyField(o, field);
                }
            }
        });

        return new OnnxQuantizeReport(matmuls.Count, gathers.Count, quantizedWeights.Count, new FileInfo(inputOnnx).Length, new FileInfo(outputOnnx).Length);
    }

    private static bool IsStandard(OnnxNodeView node) => node.Domain is "" or "ai.onnx";

    /// <summary>A Transpose's perm attribute, or null when absent (reverse the dims).</summary>
    private static long[]? Perm(OnnxNodeView node)
    {
        foreach (var f in node.Field.Message().All(NodeAttribute))
        {
            var attribute = f.Message();
            if (attribute.String(AttrName) == "perm")
            {
                var values = new List<long>();
                foreach (var i in attribute.All(AttrInts))
                {
                    i.ReadRepeated(s => s.ReadInt64(), values, x => x.Int64);
                }

                return values.ToArray();
            }
        }

        return null;
    }

    /// <summary>The Gather node again, every field copied but its data input and its output renamed.</summary>
    private static void WriteWithRenamedData(CodedOutputStream o, ProtoField gather, string data, string output) =>
        ProtoWriter.Message(o, GraphNode, n =>
        {
            var inputIndex = 0;
            foreach (var f in gather.Message().Fields)
            {
                if (f.Number == NodeInput && inputIndex++ == 0)
                {
                    ProtoWriter.String(n, NodeInput, data);
                }
                else if (f.Number == NodeOutput)
                {
                    ProtoWriter.String(n, NodeOutput, output);
                }
                else
                {
                    ProtoWriter.CopyField(n, f);
                }
            }
        });

    private static void WriteNode(CodedOutputStream o, OnnxNodeProto node) => ProtoWriter.Message(o, GraphNode, node.WriteTo);

    /// <summary>W → int8 values, scale and zero point (0) initializers. A MatMul weight is [K, N] (after the optional
    /// transpose of a stored [N, K]); per channel means per column n.</summary>
    private static QuantizedTensor QuantizeWeight(OnnxTensorView weight, string source, bool transpose, bool perChannel, List<OnnxTensorProto> added, string suffix)
    {
        var values = OnnxModelReader.Floats(weight, source);
        var dims = weight.Dims.ToArray();
        if (transpose)
        {
            var (rows, cols) = (dims[0], dims[1]);
            var t = new float[values.Length];
            for (long r = 0; r < rows; r++)
            {
                for (long c = 0; c < cols; c++)
                {
                    t[(c * rows) + r] = values[(r * cols) + c];
                }
            }

            values = t;
            dims = new[] { cols, rows };
        }

        var columns = dims[^1];
        var channels = perChannel ? columns : 1;
        var scales = new float[channels];
        for (long i = 0; i < values.Length; i++)
        {
            var c = perChannel ? i % columns : 0;
            scales[c] = Math.Max(scales[c], Math.Abs(values[i]));
        }

        for (var c = 0; c < channels; c++)
        {
            scales[c] = scales[c] > 0 ? scales[c] / Int8Range : 1f; // an all-zero weight: any scale gives zeros
        }

        var quantized = new sbyte[values.Length];
        for (long i = 0; i < values.Length; i++)
        {
            var scaled = Math.Round(values[i] / scales[perChannel ? i % columns : 0], MidpointRounding.ToEven);
            quantized[i] = (sbyte)Math.Clamp(scaled, -Int8Range, Int8Range);
        }

        var scaleDims = perChannel ? new[] { columns } : Array.Empty<long>();
        var stem = weight.Name + suffix + (perChannel ? "_per_channel" : "");
        var result = new QuantizedTensor(stem + "_quantized", stem + "_scale", stem + "_zero_point");
        added.Add(OnnxTensorProto.Of<sbyte>(result.Values, OnnxDataType.Int8, dims, quantized));
        added.Add(OnnxTensorProto.Of<float>(result.Scale, OnnxDataType.Float, scaleDims, scales));
        added.Add(OnnxTensorProto.Of<sbyte>(result.ZeroPoint, OnnxDataType.Int8, scaleDims, new sbyte[channels]));
        return result;
    }
}
