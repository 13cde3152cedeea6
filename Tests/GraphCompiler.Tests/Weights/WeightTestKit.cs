using System.Text;
using Google.Protobuf;
using GraphCompiler.Runtime.Weights;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Weights;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Root);

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "gc-weights-" + Guid.NewGuid().ToString("N"));

    public string File(string name) => Path.Combine(Root, name);

    public string Write(string name, byte[] bytes)
    {
        var path = File(name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}

/// <summary>Byte-level builders for weight files and shared assertions.</summary>
public static class WeightTestKit
{
    /// <summary>A safetensors file from a header length, header text and data bytes, written by hand.</summary>
    public static byte[] SafeTensorsBytes(string header, byte[]? data = null, ulong? headerLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new List<byte>();
        bytes.AddRange(BitConverter.GetBytes(headerLength ?? (ulong)json.Length));
        bytes.AddRange(json);
        bytes.AddRange(data ?? Array.Empty<byte>());
        return bytes.ToArray();
    }

    /// <summary>Asserts that reading throws a <see cref="WeightFileException"/> naming the file and the problem.</summary>
    public static WeightFileException AssertRejected(Func<TensorSet> read, string path, params string[] problemParts)
    {
        var ex = Assert.Throws<WeightFileException>(() =>
        {
            using var set = read();
        });
        Assert.Equal(path, ex.File);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        foreach (var part in problemParts)
        {
            Assert.Contains(part, ex.Problem, StringComparison.OrdinalIgnoreCase);
        }

        return ex;
    }

    public static void AssertIdentical(Tensor expected, Tensor actual, string what)
    {
        Assert.True(expected.dtype == actual.dtype, $"{what}: dtype {actual.dtype}, expected {expected.dtype}");
        Assert.True(expected.shape.SequenceEqual(actual.shape), $"{what}: shape [{string.Join(",", actual.shape)}], expected [{string.Join(",", expected.shape)}]");
        Assert.True(expected.numel() == 0 || expected.contiguous().bytes.SequenceEqual(actual.contiguous().bytes), $"{what}: bytes differ");
    }

    // ONNX protobuf by hand: ModelProto(ir_version=1, graph=7); GraphProto(node=1, initializer=5);
    // NodeProto(input=1, output=2, op_type=4); TensorProto(dims=1, data_type=2, name=8, raw_data=9, data_location=14).

    public static byte[] OnnxModel(byte[] graph, long irVersion = 8)
    {
        using var ms = new MemoryStream();
        var o = new CodedOutputStream(ms);
        o.WriteTag(1, WireFormat.WireType.Varint);
        o.WriteInt64(irVersion);
        o.WriteTag(7, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(graph));
        o.Flush();
        return ms.ToArray();
    }

    public static byte[] OnnxGraph(IEnumerable<byte[]> nodes, IEnumerable<byte[]> initializers)
    {
        using var ms = new MemoryStream();
        var o = new CodedOutputStream(ms);
        foreach (var n in nodes)
        {
            o.WriteTag(1, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFrom(n));
        }

        foreach (var i in initializers)
        {
            o.WriteTag(5, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFrom(i));
        }

        o.Flush();
        return ms.ToArray();
    }

    public static byte[] OnnxNode(string opType, string[] inputs, string[] outputs)
    {
        using var ms = new MemoryStream();
        var o = new CodedOutputStream(ms);
        foreach (var i in inputs)
        {
            o.WriteTag(1, WireFormat.WireType.LengthDelimited);
            o.WriteString(i);
        }

        foreach (var x in outputs)
        {
            o.WriteTag(2, WireFormat.WireType.LengthDelimited);
            o.WriteString(x);
        }

        o.WriteTag(4, WireFormat.WireType.LengthDelimited);
        o.WriteString(opType);
        o.Flush();
        return ms.ToArray();
    }

    /// <summary>A float initializer with raw little-endian data (or none, with <paramref name="dataLocation"/> = 1 for external).</summary>
    public static byte[] OnnxFloatInitializer(string name, long[] dims, float[]? values, int? dataLocation = null, byte[]? raw = null)
    {
        using var ms = new MemoryStream();
        var o = new CodedOutputStream(ms);
        foreach (var d in dims)
        {
            o.WriteTag(1, WireFormat.WireType.Varint);
            o.WriteInt64(d);
        }

        o.WriteTag(2, WireFormat.WireType.Varint);
        o.WriteInt32(1); // FLOAT
        o.WriteTag(8, WireFormat.WireType.LengthDelimited);
        o.WriteString(name);
        if (values is not null || raw is not null)
        {
            raw ??= values!.SelectMany(BitConverter.GetBytes).ToArray();
            o.WriteTag(9, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFrom(raw));
        }

        if (dataLocation is not null)
        {
            o.WriteTag(14, WireFormat.WireType.Varint);
            o.WriteInt32(dataLocation.Value);
        }

        o.Flush();
        return ms.ToArray();
    }
}
