using Google.Protobuf;
using GraphCompiler.Runtime.Weights;

namespace GraphCompiler.Runtime.Onnx;

/// <summary>Field numbers of onnx.proto (ONNX IR), for the messages this project reads and writes.</summary>
public static class OnnxFields
{
    public const int ModelIrVersion = 1, ModelProducerName = 2, ModelProducerVersion = 3, ModelDocString = 6, ModelGraph = 7, ModelOpsetImport = 8;
    public const int OpsetDomain = 1, OpsetVersion = 2;
    public const int GraphNode = 1, GraphName = 2, GraphInitializer = 5, GraphInput = 11, GraphOutput = 12, GraphValueInfo = 13;
    public const int NodeInput = 1, NodeOutput = 2, NodeName = 3, NodeOpType = 4, NodeAttribute = 5, NodeDomain = 7;
    public const int AttrName = 1, AttrF = 2, AttrI = 3, AttrS = 4, AttrT = 5, AttrFloats = 7, AttrInts = 8, AttrType = 20;
    public const int TensorDims = 1, TensorDataType = 2, TensorFloatData = 4, TensorInt32Data = 5, TensorInt64Data = 7, TensorName = 8,
        TensorRawData = 9, TensorDoubleData = 10, TensorDataLocation = 14;
    public const int ValueInfoName = 1, ValueInfoType = 2;
    public const int TypeTensor = 1, TypeTensorElemType = 1, TypeTensorShape = 2, ShapeDim = 1, DimValue = 1, DimParam = 2;
}

/// <summary>TensorProto.DataType values.</summary>
public static class OnnxDataType
{
    public const int Float = 1, UInt8 = 2, Int8 = 3, Int32 = 6, Int64 = 7, Bool = 9, Double = 11;

    public static int ElementSize(int dataType) => dataType switch
    {
        Float or Int32 => 4,
        UInt8 or Int8 or Bool => 1,
        Int64 or Double => 8,
        _ => 0,
    };
}

/// <summary>A NodeProto as read: its field list (to copy unchanged) and the parts rewriters look at.</summary>
public sealed record OnnxNodeView(ProtoField Field, string OpType, string Name, string Domain, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs);

/// <summary>A TensorProto (initializer) as read. Data is either <see cref="Raw"/> (raw_data) or one of the typed lists.</summary>
public sealed record OnnxTensorView(
    ProtoField Field, string Name, long[] Dims, int DataType, ReadOnlyMemory<byte>? Raw,
    List<float> Floats, List<long> Longs, List<double> Doubles, List<int> Int32s, bool External);

/// <summary>A whole ONNX model as read: the ModelProto's fields, the graph's fields, and typed views of its nodes,
/// initializers and input/output names.</summary>
public sealed record OnnxModelView(
    string Source, ProtoMessage Model, ProtoMessage Graph, IReadOnlyList<OnnxNodeView> Nodes, IReadOnlyList<OnnxTensorView> Initializers,
    IReadOnlyList<string> InputNames, IReadOnlyList<string> OutputNames, IReadOnlyDictionary<string, long> Opsets, long IrVersion);

/// <summary>Reads ONNX models (ModelProto wire format). Every reader of ONNX bytes in the project goes through here
/// (OnnxWeights, OnnxDynamicQuantizer, tests). Malformed input is a <see cref="WeightFileException"/> naming the source.</summary>
public static class OnnxModelReader
{
    public static OnnxModelView Read(string path) => Read(ReadBytes(path), path);

    /// <summary>The file's bytes; a file that cannot be opened is a <see cref="WeightFileException"/> naming it.</summary>
    internal static byte[] ReadBytes(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new WeightFileException(path, "cannot open: " + ex.Message, ex);
        }
    }

    public static OnnxModelView Read(byte[] bytes, string source)
    {
        try
        {
            var model = ProtoMessage.Parse(bytes, 0, bytes.Length);
            var ir = model.First(OnnxFields.ModelIrVersion);
            var graphField = model.First(OnnxFields.ModelGraph);
            if (ir is not { WireType: WireFormat.WireType.Varint } || graphField is not { IsLengthDelimited: true })
            {
                throw new WeightFileException(source, "not an ONNX model: no ir_version and graph");
            }

            var opsets = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var f in model.All(OnnxFields.ModelOpsetImport))
            {
                var opset = f.Message();
                opsets[opset.String(OnnxFields.OpsetDomain)] = opset.First(OnnxFields.OpsetVersion)?.Int64 ?? 0;
            }

            var graph = graphField.Value.Message();
            var nodes = new List<OnnxNodeView>();
            var initializers = new List<OnnxTensorView>();
            var inputs = new List<string>();
            var outputs = new List<string>();
            foreach (var f in graph.Fields)
            {
                switch (f.Number)
                {
                    case OnnxFields.GraphNode: nodes.Add(ReadNode(f)); break;
                    case OnnxFields.GraphInitializer: initializers.Add(ReadTensor(f)); break;
                    case OnnxFields.GraphInput: inputs.Add(f.Message().String(OnnxFields.ValueInfoName)); break;
                    case OnnxFields.GraphOutput: outputs.Add(f.Message().String(OnnxFields.ValueInfoName)); break;
                }
            }

            return new OnnxModelView(source, model, graph, nodes, initializers, inputs, outputs, opsets, ir.Value.Int64);
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or FormatException)
        {
            throw new WeightFileException(source, "not an ONNX model, or truncated: " + ex.Message, ex);
        }
    }

    private static OnnxNodeView ReadNode(ProtoField field)
    {
        var node = field.Message();
        return new OnnxNodeView(
            field,
            node.String(OnnxFields.NodeOpType),
            node.String(OnnxFields.NodeName),
            node.String(OnnxFields.NodeDomain),
            node.All(OnnxFields.NodeInput).Select(f => f.String()).ToList(),
            node.All(OnnxFields.NodeOutput).Select(f => f.String()).ToList());
    }

    private static OnnxTensorView ReadTensor(ProtoField field)
    {
        var tensor = field.Message();
        var dims = new List<long>();
        var floats = new List<float>();
        var longs = new List<long>();
        var doubles = new List<double>();
        var ints = new List<int>();
        ReadOnlyMemory<byte>? raw = null;
        var external = false;
        foreach (var f in tensor.Fields)
        {
            switch (f.Number)
            {
                case OnnxFields.TensorDims: f.ReadRepeated(i => i.ReadInt64(), dims, x => x.Int64); break;
                case OnnxFields.TensorFloatData: f.ReadRepeated(i => i.ReadFloat(), floats, x => x.Float); break;
                case OnnxFields.TensorInt32Data: f.ReadRepeated(i => i.ReadInt32(), ints, x => (int)x.Int64); break;
                case OnnxFields.TensorInt64Data: f.ReadRepeated(i => i.ReadInt64(), longs, x => x.Int64); break;
                case OnnxFields.TensorDoubleData: f.ReadRepeated(i => i.ReadDouble(), doubles, x => BitConverter.Int64BitsToDouble((long)x.Scalar)); break;
                case OnnxFields.TensorRawData: raw = f.Payload; break;
                case OnnxFields.TensorDataLocation: external = f.Int64 == 1; break;
            }
        }

        return new OnnxTensorView(field, tensor.String(OnnxFields.TensorName), dims.ToArray(), (int)(tensor.First(OnnxFields.TensorDataType)?.Int64 ?? 0),
            raw, floats, longs, doubles, ints, external);
    }

    /// <summary>An initializer's values as float32 (float initializers only; raw or float_data).</summary>
    public static float[] Floats(OnnxTensorView tensor, string source)
    {
        if (tensor.DataType != OnnxDataType.Float)
        {
            throw new WeightFileException(source, $"initializer '{tensor.Name}' has ONNX data type {tensor.DataType}, expected float (1)");
        }

        if (tensor.External)
        {
            throw new WeightFileException(source, $"initializer '{tensor.Name}' keeps its data in an external file, which is not supported; re-export with the weights inside the model");
        }

        if (tensor.Dims.Any(d => d < 0))
        {
            throw new WeightFileException(source, $"initializer '{tensor.Name}' has a negative dimension [{string.Join(",", tensor.Dims)}]");
        }

        // Checked: wrapped products could match a short payload and then size the array.
        var count = WeightFiles.Elements(source, tensor.Name, tensor.Dims);
        var bytes = WeightFiles.ByteCount(source, tensor.Name, tensor.Dims, count, 4);
        if (tensor.Raw is { } raw)
        {
            if (raw.Length != bytes)
            {
                throw new WeightFileException(source, $"initializer '{tensor.Name}' [{string.Join(",", tensor.Dims)}] needs {bytes} bytes of data but has {raw.Length}");
            }

            var values = new float[count];
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(raw.Span).CopyTo(values);
            return values;
        }

        if (tensor.Floats.Count != count)
        {
            throw new WeightFileException(source, $"initializer '{tensor.Name}' [{string.Join(",", tensor.Dims)}] needs {count} values but has {tensor.Floats.Count}");
        }

        return tensor.Floats.ToArray();
    }
}
