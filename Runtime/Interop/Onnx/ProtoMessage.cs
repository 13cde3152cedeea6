using Google.Protobuf;

namespace GraphCompiler.Runtime.Onnx;

/// <summary>One field of a protobuf message as it is on the wire: its number, wire type, the scalar value (varint and
/// fixed fields) or where its payload lies in the buffer (length-delimited fields). Rewriters copy the fields they do
/// not understand through <see cref="ProtoWriter.CopyField"/>, so nothing unknown is lost.</summary>
public readonly record struct ProtoField(int Number, WireFormat.WireType WireType, ulong Scalar, byte[] Buffer, int PayloadStart, int PayloadLength)
{
    public bool IsLengthDelimited => WireType == WireFormat.WireType.LengthDelimited;

    public ReadOnlyMemory<byte> Payload => new(Buffer, PayloadStart, PayloadLength);

    public ProtoMessage Message() => ProtoMessage.Parse(Buffer, PayloadStart, PayloadLength);

    public string String() => System.Text.Encoding.UTF8.GetString(Buffer, PayloadStart, PayloadLength);

    public long Int64 => (long)Scalar;

    public float Float => BitConverter.Int32BitsToSingle((int)(uint)Scalar);

    /// <summary>Values of a repeated scalar field: one value unpacked, or every value of a packed run.</summary>
    public void ReadRepeated<T>(Func<CodedInputStream, T> read, List<T> into, Func<ProtoField, T> unpacked)
    {
        if (!IsLengthDelimited)
        {
            into.Add(unpacked(this));
            return;
        }

        var run = new CodedInputStream(Buffer, PayloadStart, PayloadLength);
        while (!run.IsAtEnd)
        {
            into.Add(read(run));
        }
    }
}

/// <summary>A protobuf message split into its fields, without copying payloads (they stay slices of the buffer).
/// The one place ONNX bytes are taken apart; <see cref="OnnxModelReader"/> gives the fields their ONNX meaning.</summary>
public sealed class ProtoMessage
{
    private ProtoMessage(List<ProtoField> fields) => Fields = fields;

    public IReadOnlyList<ProtoField> Fields { get; }

    public IEnumerable<ProtoField> All(int number) => Fields.Where(f => f.Number == number);

    public ProtoField? First(int number)
    {
        foreach (var f in Fields)
        {
            if (f.Number == number)
            {
                return f;
            }
        }

        return null;
    }

    public string String(int number) => First(number)?.String() ?? "";

    /// <summary>Splits <paramref name="length"/> bytes at <paramref name="offset"/>; throws InvalidProtocolBufferException
    /// or FormatException on malformed or truncated input.</summary>
    public static ProtoMessage Parse(byte[] buffer, int offset, int length)
    {
        var fields = new List<ProtoField>();
        var input = new CodedInputStream(buffer, offset, length);
        var origin = input.Position; // Position may or may not count the offset; measure from here
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var number = WireFormat.GetTagFieldNumber(tag);
            var type = WireFormat.GetTagWireType(tag);
            switch (type)
            {
                case WireFormat.WireType.Varint:
                    fields.Add(new ProtoField(number, type, input.ReadUInt64(), buffer, 0, 0));
                    break;
                case WireFormat.WireType.Fixed32:
                    fields.Add(new ProtoField(number, type, input.ReadFixed32(), buffer, 0, 0));
                    break;
                case WireFormat.WireType.Fixed64:
                    fields.Add(new ProtoField(number, type, input.ReadFixed64(), buffer, 0, 0));
                    break;
                case WireFormat.WireType.LengthDelimited:
                    {
                        var start = offset + (int)(input.Position - origin);
                        input.SkipLastField();
                        var end = offset + (int)(input.Position - origin);
                        var (payloadLength, prefix) = Varint(buffer, start, end);
                        fields.Add(new ProtoField(number, type, 0, buffer, start + prefix, payloadLength));
                        break;
                    }

                default:
                    throw new FormatException($"field {number} has wire type {type}, which ONNX does not use");
            }
        }

        return new ProtoMessage(fields);
    }

    private static (int Value, int Bytes) Varint(byte[] buffer, int start, int end)
    {
        ulong value = 0;
        for (var i = 0; start + i < end && i < 10; i++)
        {
            var b = buffer[start + i];
            value |= (ulong)(b & 0x7f) << (7 * i);
            if ((b & 0x80) == 0)
            {
                return ((int)value, i + 1);
            }
        }

        throw new FormatException("malformed length prefix");
    }
}

/// <summary>Writing helpers over CodedOutputStream: nested messages are encoded to bytes first (their length
/// prefixes need their size).</summary>
public static class ProtoWriter
{
    public static byte[] Encode(Action<CodedOutputStream> body)
    {
        using var memory = new MemoryStream();
        using (var output = new CodedOutputStream(memory, leaveOpen: true))
        {
            body(output);
        }

        return memory.ToArray();
    }

    public static void String(CodedOutputStream output, int number, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            output.WriteTag(number, WireFormat.WireType.LengthDelimited);
            output.WriteString(value);
        }
    }

    public static void Int64(CodedOutputStream output, int number, long value)
    {
        output.WriteTag(number, WireFormat.WireType.Varint);
        output.WriteInt64(value);
    }

    public static void Bytes(CodedOutputStream output, int number, ReadOnlyMemory<byte> payload)
    {
        output.WriteTag(number, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(UnsafeByteOperations.UnsafeWrap(payload));
    }

    public static void Message(CodedOutputStream output, int number, Action<CodedOutputStream> body) => Bytes(output, number, Encode(body));

    /// <summary>Packed repeated int64 (proto3 style; proto2 readers accept packed runs too).</summary>
    public static void PackedInt64(CodedOutputStream output, int number, IReadOnlyList<long> values)
    {
        if (values.Count > 0)
        {
            Bytes(output, number, Encode(o =>
            {
                foreach (var v in values)
                {
                    o.WriteInt64(v);
                }
            }));
        }
    }

    /// <summary>Re-emits a field read by <see cref="ProtoMessage.Parse"/> unchanged.</summary>
    public static void CopyField(CodedOutputStream output, ProtoField field)
    {
        output.WriteTag(field.Number, field.WireType);
        switch (field.WireType)
        {
            case WireFormat.WireType.Varint: output.WriteUInt64(field.Scalar); break;
            case WireFormat.WireType.Fixed32: output.WriteFixed32((uint)field.Scalar); break;
            case WireFormat.WireType.Fixed64: output.WriteFixed64(field.Scalar); break;
            default: output.WriteBytes(UnsafeByteOperations.UnsafeWrap(field.Payload)); break;
        }
    }

    /// <summary>Writes <paramref name="path"/> through <see cref="Weights.AtomicFile"/> (a temporary file in its folder,
    /// fsync, a rename), so a crash never leaves a half-written model under the final name.</summary>
    public static void WriteAtomically(string path, Action<CodedOutputStream> body) =>
        Weights.AtomicFile.Write(path, stream =>
        {
            using var output = new CodedOutputStream(stream, leaveOpen: true);
            body(output);
        });
}
