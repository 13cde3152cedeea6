using Google.Protobuf;
using GraphCompiler.Runtime.Weights;
using static GraphCompiler.Runtime.Onnx.OnnxFields;

namespace GraphCompiler.Runtime.Onnx;

/// <summary>How <see cref="OnnxDynamicQuantizer.Quantize"/> quantizes weights.</summary>
public sealed record OnnxQuantizeOptions
{
    /// <summary>One scale per output column instead of one per tensor (quantize_dynamic's per_channel=True).</summary>
    public bool PerChannel { get; init; }
}

/// <summary>What a quantization did.</summary>
public sealed record OnnxQuantizeReport(int MatMulsQuantized, int WeightsQuantized, long InputBytes, long OutputBytes);

/// <summary>The ONNX Runtime peer of our int8 models: rewrites an fp32 ONNX model as
/// onnxruntime.quantization.quantize_dynamic does for MatMul nodes whose weight is an initializer. The activation is
/// quantized at run time by DynamicQuantizeLinear (uint8, asymmetric), the weight ahead of time to int8 (symmetric,
/// zero point 0, scale max|w|/127 per tensor, or per output column), then MatMulInteger → Cast → Mul by the product of
/// the two scales. Everything else in the file is copied field by field, unknown fields included.</summary>
public static class OnnxDynamicQuantizer
{
    private const float Int8Range = 127f;

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

        bool IsCandidate(OnnxNodeView n) =>
            n.OpType == "MatMul" && n.Domain is ("" or "ai.onnx") && n.Inputs.Count == 2 && n.Outputs.Count == 1
            && !initializers.ContainsKey(n.Inputs[0])
            && initializers.TryGetValue(n.Inputs[1], out var weight) && weight.DataType == OnnxDataType.Float && weight.Dims.Length == 2 && !weight.External;

        var candidates = model.Nodes.Where(IsCandidate).ToHashSet();
        // A weight also read by some other node keeps its float copy.
        var removed = candidates.Select(n => n.Inputs[1]).Distinct(StringComparer.Ordinal)
            .Where(name => model.Nodes.All(n => candidates.Contains(n) ? n.Inputs[0] != name : !n.Inputs.Contains(name)))
            .ToHashSet(StringComparer.Ordinal);

        var added = new List<OnnxTensorProto>();
        var quantizedWeights = new Dictionary<string, (string Values, string Scale, string ZeroPoint)>(StringComparer.Ordinal);
        var quantizedActivations = new Dictionary<string, (string Values, string Scale, string ZeroPoint)>(StringComparer.Ordinal);
        var counter = 0;
        var nodeAt = model.Nodes.ToDictionary(n => n.Field.PayloadStart);
        var initializerAt = model.Initializers.ToDictionary(i => i.Field.PayloadStart);

        var graphBytes = ProtoWriter.Encode(o =>
        {
            foreach (var field in model.Graph.Fields)
            {
                switch (field.Number)
                {
                    case GraphNode:
                        {
                            var node = nodeAt[field.PayloadStart];
                            if (!candidates.Contains(node))
                            {
                                ProtoWriter.CopyField(o, field);
                                break;
                            }

                            var stem = (node.Name.Length > 0 ? node.Name : node.Outputs[0]) + "_" + (counter++).ToString(System.Globalization.CultureInfo.InvariantCulture);
                            var activation = node.Inputs[0];
                            if (!quantizedActivations.TryGetValue(activation, out var a))
                            {
                                a = (activation + "_quantized", activation + "_scale", activation + "_zero_point");
                                WriteNode(o, new OnnxNodeProto("DynamicQuantizeLinear", new[] { activation }, new[] { a.Values, a.Scale, a.ZeroPoint }, activation + "_DynamicQuantizeLinear", Array.Empty<OnnxAttribute>()));
                                quantizedActivations[activation] = a;
                            }

                            var weightName = node.Inputs[1];
                            if (!quantizedWeights.TryGetValue(weightName, out var q))
                            {
                                q = QuantizeWeight(initializers[weightName], inputOnnx, options.PerChannel, added);
                                quantizedWeights[weightName] = q;
                            }

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

        return new OnnxQuantizeReport(candidates.Count, quantizedWeights.Count, new FileInfo(inputOnnx).Length, new FileInfo(outputOnnx).Length);
    }

    private static void WriteNode(CodedOutputStream o, OnnxNodeProto node) => ProtoWriter.Message(o, GraphNode, node.WriteTo);

    /// <summary>W [K, N] → int8 values, scale and zero point (0) initializers; per channel means per column n.</summary>
    private static (string Values, string Scale, string ZeroPoint) QuantizeWeight(OnnxTensorView weight, string source, bool perChannel, List<OnnxTensorProto> added)
    {
        var values = OnnxModelReader.Floats(weight, source);
        var rows = weight.Dims[0];
        var cols = weight.Dims[1];
        var channels = perChannel ? cols : 1;
        var scales = new float[channels];
        for (long i = 0; i < values.Length; i++)
        {
            var c = perChannel ? i % cols : 0;
            scales[c] = Math.Max(scales[c], Math.Abs(values[i]));
        }

        for (var c = 0; c < channels; c++)
        {
            scales[c] = scales[c] > 0 ? scales[c] / Int8Range : 1f; // an all-zero weight: any scale gives zeros
        }

        var quantized = new sbyte[values.Length];
        for (long i = 0; i < values.Length; i++)
        {
            var scaled = Math.Round(values[i] / scales[perChannel ? i % cols : 0], MidpointRounding.ToEven);
            quantized[i] = (sbyte)Math.Clamp(scaled, -Int8Range, Int8Range);
        }

        var scaleDims = perChannel ? new[] { cols } : Array.Empty<long>();
        var result = (weight.Name + "_quantized", weight.Name + "_scale", weight.Name + "_zero_point");
        added.Add(OnnxTensorProto.Of<sbyte>(result.Item1, OnnxDataType.Int8, new[] { rows, cols }, quantized));
        added.Add(OnnxTensorProto.Of<float>(result.Item2, OnnxDataType.Float, scaleDims, scales));
        added.Add(OnnxTensorProto.Of<sbyte>(result.Item3, OnnxDataType.Int8, scaleDims, new sbyte[channels]));
        return result;
    }
}
