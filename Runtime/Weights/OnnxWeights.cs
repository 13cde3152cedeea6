using Google.Protobuf;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Weights;

/// <summary>Reads the parameters of an ONNX model (its graph's initializers) under HF-style names.
/// Exporters often leave Linear weights unnamed (e.g. "983", stored [in, out] and consumed by a MatMul whose result
/// feeds an Add with a named bias "x.bias"); those are recovered from the graph as "x.weight" and transposed to
/// torch's [out, in]. Only the wire format is parsed (Google.Protobuf), with every length checked.</summary>
public static class OnnxWeights
{
    private sealed record OnnxNode(string OpType, List<string> Inputs, List<string> Outputs);

    private sealed record Initializer(string Name, long[] Dims, int DataType, ByteString? Raw, List<float> Floats, List<long> Longs, List<double> Doubles);

    public static TensorSet Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new WeightFileException(path, "cannot open: " + ex.Message, ex);
        }

        return Read(bytes, path);
    }

    public static TensorSet Read(byte[] model, string source)
    {
        var (nodes, initializers) = ParseModel(model, source);
        var set = new TensorSet(source);
        try
        {
            var byName = new Dictionary<string, Initializer>(StringComparer.Ordinal);
            foreach (var init in initializers)
            {
                if (!byName.TryAdd(init.Name, init))
                {
                    throw new WeightFileException(source, $"initializer '{init.Name}' appears twice");
                }
            }

            var consumers = nodes.SelectMany(n => n.Inputs.Select(i => (Input: i, Node: n))).ToLookup(x => x.Input, x => x.Node);
            var recovered = new Dictionary<string, string>(StringComparer.Ordinal); // initializer → parameter name

            foreach (var matmul in nodes.Where(n => n.OpType == "MatMul" && n.Inputs.Count == 2 && n.Outputs.Count == 1))
            {
                if (!byName.TryGetValue(matmul.Inputs[1], out var weight) || weight.Dims.Length != 2 || LooksNamed(weight.Name))
                {
                    continue;
                }

                var add = consumers[matmul.Outputs[0]].FirstOrDefault(n => n.OpType == "Add");
                var bias = add?.Inputs.FirstOrDefault(i => i != matmul.Outputs[0] && i.EndsWith(".bias", StringComparison.Ordinal) && byName.ContainsKey(i));
                if (bias is not null)
                {
                    recovered[weight.Name] = bias[..^".bias".Length] + ".weight";
                }
            }

            foreach (var init in initializers)
            {
                string name;
                var transpose = false;
                if (recovered.TryGetValue(init.Name, out var weightName))
                {
                    name = weightName;
                    transpose = true;
                }
                else if (LooksNamed(init.Name))
                {
                    name = init.Name;
                }
                else
                {
                    continue; // constants of the graph (shapes, scalars), not parameters
                }

                var tensor = ToTensor(init, source);
                if (transpose)
                {
                    using var t = tensor;
                    tensor = t.t().contiguous();
                }

                set.Add(name, tensor);
            }

            return set;
        }
        catch
        {
            set.Dispose();
            throw;
        }
    }

    /// <summary>Parameter names look like "encoder.layer.0.attention.self.query.bias"; exporter-made ones are numbers or "onnx::…".</summary>
    private static bool LooksNamed(string name) =>
        name.Contains('.') && !name.StartsWith("onnx::", StringComparison.Ordinal) && !name.All(c => char.IsDigit(c) || c == '.');

    private static (List<OnnxNode> Nodes, List<Initializer> Initializers) ParseModel(byte[] model, string source)
    {
        try
        {
            ByteString? graph = null;
            var input = new CodedInputStream(model);
            var sawIrVersion = false;
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case 1 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.Varint:
                        input.ReadInt64();
                        sawIrVersion = true;
                        break;
                    case 7 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        graph = input.ReadBytes();
                        break;
                    default:
                        input.SkipLastField();
                        break;
                }
            }

            if (graph is null || !sawIrVersion)
            {
                throw new WeightFileException(source, "not an ONNX model: no ir_version and graph");
            }

            return ParseGraph(graph, source);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new WeightFileException(source, "not an ONNX model, or truncated: " + ex.Message, ex);
        }
    }

    private static (List<OnnxNode>, List<Initializer>) ParseGraph(ByteString graph, string source)
    {
        var nodes = new List<OnnxNode>();
        var initializers = new List<Initializer>();
        var input = graph.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1:
                    nodes.Add(ParseNode(input.ReadBytes()));
                    break;
                case 5:
                    initializers.Add(ParseTensor(input.ReadBytes(), source));
                    break;
                default:
                    input.SkipLastField();
                    break;
            }
        }

        return (nodes, initializers);
    }

    private static OnnxNode ParseNode(ByteString bytes)
    {
        var node = new OnnxNode("", new List<string>(), new List<string>());
        var opType = "";
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: node.Inputs.Add(input.ReadString()); break;
                case 2: node.Outputs.Add(input.ReadString()); break;
                case 4: opType = input.ReadString(); break;
                default: input.SkipLastField(); break;
            }
        }

        return node with { OpType = opType };
    }

    private static Initializer ParseTensor(ByteString bytes, string source)
    {
        var dims = new List<long>();
        var floats = new List<float>();
        var longs = new List<long>();
        var doubles = new List<double>();
        var dataType = 0;
        var name = "";
        ByteString? raw = null;
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var packed = WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited;
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: ReadRepeated(input, packed, i => i.ReadInt64(), dims); break;
                case 2: dataType = input.ReadInt32(); break;
                case 4: ReadRepeated(input, packed, i => i.ReadFloat(), floats); break;
                case 7: ReadRepeated(input, packed, i => i.ReadInt64(), longs); break;
                case 8: name = input.ReadString(); break;
                case 9: raw = input.ReadBytes(); break;
                case 10: ReadRepeated(input, packed, i => i.ReadDouble(), doubles); break;
                case 14:
                    if (input.ReadInt32() == 1)
                    {
                        throw new WeightFileException(source, $"initializer '{name}' keeps its data in an external file, which is not supported; re-export with the weights inside the model");
                    }

                    break;
                default: input.SkipLastField(); break;
            }
        }

        return new Initializer(name, dims.ToArray(), dataType, raw, floats, longs, doubles);
    }

    /// <summary>Repeated scalars come either one per tag or packed as one length-delimited run.</summary>
    private static void ReadRepeated<T>(CodedInputStream input, bool packed, Func<CodedInputStream, T> read, List<T> into)
    {
        if (!packed)
        {
            into.Add(read(input));
            return;
        }

        var run = input.ReadBytes().CreateCodedInput();
        while (!run.IsAtEnd)
        {
            into.Add(read(run));
        }
    }

    private static Tensor ToTensor(Initializer init, string source)
    {
        var (type, size) = init.DataType switch
        {
            1 => (ScalarType.Float32, 4),
            7 => (ScalarType.Int64, 8),
            11 => (ScalarType.Float64, 8),
            _ => throw new WeightFileException(source, $"initializer '{init.Name}' has ONNX data type {init.DataType}, which is not supported (float, double and int64 are)"),
        };
        if (init.Dims.Any(d => d < 0))
        {
            throw new WeightFileException(source, $"initializer '{init.Name}' has a negative dimension [{string.Join(",", init.Dims)}]");
        }

        var count = SafeTensors.Elements(source, init.Name, init.Dims);
        var bytes = SafeTensors.ByteCount(source, init.Name, init.Dims, count, size);
        var typedCount = type switch
        {
            ScalarType.Float32 => init.Floats.Count,
            ScalarType.Float64 => init.Doubles.Count,
            _ => init.Longs.Count,
        };

        // Check the data against the dims before allocating: the dims alone may claim terabytes.
        if (init.Raw is not null && init.Raw.Length != bytes)
        {
            throw new WeightFileException(source, $"initializer '{init.Name}' [{string.Join(",", init.Dims)}] needs {bytes} bytes of data but has {init.Raw.Length}");
        }

        if (init.Raw is null && typedCount != count)
        {
            throw new WeightFileException(source, $"initializer '{init.Name}' [{string.Join(",", init.Dims)}] needs {count} values but has {typedCount}");
        }

        var tensor = empty(init.Dims, type);
        try
        {
            if (init.Raw is not null)
            {
                if (count > 0)
                {
                    init.Raw.Span.CopyTo(tensor.bytes);
                }
            }
            else
            {
                Array typed = type switch
                {
                    ScalarType.Float32 => init.Floats.ToArray(),
                    ScalarType.Float64 => init.Doubles.ToArray(),
                    _ => init.Longs.ToArray(),
                };

                // int32 data is stored in int32_data (field 5) which exporters do not use for parameters.
                using var values = from_array(typed);
                using var shaped = values.reshape(init.Dims);
                tensor.copy_(shaped);
            }

            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }
}
