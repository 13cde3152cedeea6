using System.Runtime.InteropServices;
using Google.Protobuf;
using static GraphCompiler.Runtime.Onnx.OnnxFields;

namespace GraphCompiler.Runtime.Onnx;

// The ONNX messages the exporter and the quantizer build, each encoding itself by hand (onnx.proto field numbers in
// OnnxFields). Only what they need: no sparse tensors, no sub-graphs, no functions.

/// <summary>A TensorProto with its data as raw_data (little-endian, as ONNX requires).</summary>
public sealed record OnnxTensorProto(string Name, int DataType, long[] Dims, byte[] Raw)
{
    public static OnnxTensorProto Of<T>(string name, int dataType, long[] dims, ReadOnlySpan<T> values)
        where T : unmanaged => new(name, dataType, dims, MemoryMarshal.AsBytes(values).ToArray());

    public static OnnxTensorProto Int64s(string name, params long[] values) => Of<long>(name, OnnxDataType.Int64, new long[] { values.Length }, values);

    public static OnnxTensorProto ScalarFloat(string name, float value) => Of<float>(name, OnnxDataType.Float, Array.Empty<long>(), new[] { value });

    public void WriteTo(CodedOutputStream o)
    {
        ProtoWriter.PackedInt64(o, TensorDims, Dims);
        ProtoWriter.Int64(o, TensorDataType, DataType);
        ProtoWriter.String(o, TensorName, Name);
        ProtoWriter.Bytes(o, TensorRawData, Raw);
    }
}

/// <summary>An AttributeProto: exactly one of float, int, ints, string or tensor.</summary>
public sealed record OnnxAttribute(string Name, float? F = null, long? I = null, long[]? Ints = null, string? S = null, OnnxTensorProto? T = null)
{
    // AttributeProto.AttributeType
    private const int FloatType = 1, IntType = 2, StringType = 3, TensorType = 4, IntsType = 7;

    public static OnnxAttribute Float(string name, float value) => new(name, F: value);

    public static OnnxAttribute Int(string name, long value) => new(name, I: value);

    public static OnnxAttribute IntList(string name, params long[] values) => new(name, Ints: values);

    public static OnnxAttribute Tensor(string name, OnnxTensorProto value) => new(name, T: value);

    public void WriteTo(CodedOutputStream o)
    {
        ProtoWriter.String(o, AttrName, Name);
        if (F is { } f)
        {
            o.WriteTag(AttrF, WireFormat.WireType.Fixed32);
            o.WriteFloat(f);
            ProtoWriter.Int64(o, AttrType, FloatType);
        }
        else if (I is { } i)
        {
            ProtoWriter.Int64(o, AttrI, i);
            ProtoWriter.Int64(o, AttrType, IntType);
        }
        else if (Ints is { } ints)
        {
            // Unpacked, one tag per value: the form onnx's own serializer writes for proto2 repeated fields.
            foreach (var v in ints)
            {
                ProtoWriter.Int64(o, AttrInts, v);
            }

            ProtoWriter.Int64(o, AttrType, IntsType);
        }
        else if (S is { } s)
        {
            o.WriteTag(AttrS, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFromUtf8(s));
            ProtoWriter.Int64(o, AttrType, StringType);
        }
        else if (T is { } t)
        {
            ProtoWriter.Message(o, AttrT, t.WriteTo);
            ProtoWriter.Int64(o, AttrType, TensorType);
        }
        else
        {
            throw new InvalidOperationException($"attribute '{Name}' has no value");
        }
    }
}

/// <summary>A NodeProto. An empty input name is an omitted optional input.</summary>
public sealed record OnnxNodeProto(string OpType, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, string Name, IReadOnlyList<OnnxAttribute> Attributes, string Domain = "")
{
    public void WriteTo(CodedOutputStream o)
    {
        foreach (var i in Inputs)
        {
            o.WriteTag(NodeInput, WireFormat.WireType.LengthDelimited);
            o.WriteString(i);
        }

        foreach (var i in Outputs)
        {
            o.WriteTag(NodeOutput, WireFormat.WireType.LengthDelimited);
            o.WriteString(i);
        }

        ProtoWriter.String(o, NodeName, Name);
        ProtoWriter.String(o, NodeOpType, OpType);
        foreach (var a in Attributes)
        {
            ProtoWriter.Message(o, NodeAttribute, a.WriteTo);
        }

        ProtoWriter.String(o, NodeDomain, Domain);
    }
}

/// <summary>A ValueInfoProto of a tensor: element type and dims, each a size or a symbolic name (dim_param).</summary>
public sealed record OnnxValueInfo(string Name, int ElementType, IReadOnlyList<string> Dims)
{
    public void WriteTo(CodedOutputStream o)
    {
        ProtoWriter.String(o, ValueInfoName, Name);
        ProtoWriter.Message(o, ValueInfoType, type => ProtoWriter.Message(type, TypeTensor, tensor =>
        {
            ProtoWriter.Int64(tensor, TypeTensorElemType, ElementType);
            ProtoWriter.Message(tensor, TypeTensorShape, shape =>
            {
                foreach (var d in Dims)
                {
                    ProtoWriter.Message(shape, ShapeDim, dim =>
                    {
                        if (long.TryParse(d, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var size))
                        {
                            ProtoWriter.Int64(dim, DimValue, size);
                        }
                        else
                        {
                            ProtoWriter.String(dim, DimParam, d);
                        }
                    });
                }
            });
        }));
    }
}

/// <summary>A GraphProto.</summary>
public sealed record OnnxGraphProto(string Name, IReadOnlyList<OnnxNodeProto> Nodes, IReadOnlyList<OnnxTensorProto> Initializers, IReadOnlyList<OnnxValueInfo> Inputs, IReadOnlyList<OnnxValueInfo> Outputs)
{
    public void WriteTo(CodedOutputStream o)
    {
        foreach (var n in Nodes)
        {
            ProtoWriter.Message(o, GraphNode, n.WriteTo);
        }

        ProtoWriter.String(o, GraphName, Name);
        foreach (var t in Initializers)
        {
            ProtoWriter.Message(o, GraphInitializer, t.WriteTo);
        }

        foreach (var v in Inputs)
        {
            ProtoWriter.Message(o, GraphInput, v.WriteTo);
        }

        foreach (var v in Outputs)
        {
            ProtoWriter.Message(o, GraphOutput, v.WriteTo);
        }
    }
}

/// <summary>A ModelProto: IR version, opset imports (domain → version), producer and graph.</summary>
public sealed record OnnxModelProto(long IrVersion, IReadOnlyDictionary<string, long> Opsets, string ProducerName, string ProducerVersion, string DocString, OnnxGraphProto Graph)
{
    public void WriteTo(CodedOutputStream o)
    {
        ProtoWriter.Int64(o, ModelIrVersion, IrVersion);
        ProtoWriter.String(o, ModelProducerName, ProducerName);
        ProtoWriter.String(o, ModelProducerVersion, ProducerVersion);
        ProtoWriter.String(o, ModelDocString, DocString);
        ProtoWriter.Message(o, ModelGraph, Graph.WriteTo);
        foreach (var (domain, version) in Opsets.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            ProtoWriter.Message(o, ModelOpsetImport, opset =>
            {
                ProtoWriter.String(opset, OpsetDomain, domain);
                ProtoWriter.Int64(opset, OpsetVersion, version);
            });
        }
    }

    /// <summary>Writes the model to <paramref name="path"/> atomically.</summary>
    public void Save(string path) => ProtoWriter.WriteAtomically(path, WriteTo);
}
