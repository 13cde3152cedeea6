using GraphCompiler.Runtime.Onnx;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Weights;

/// <summary>Reads the parameters of an ONNX model (its graph's initializers) under HF-style names.
/// Exporters often leave Linear weights unnamed (e.g. "983", stored [in, out] and consumed by a MatMul whose result
/// feeds an Add with a named bias "x.bias"); those are recovered from the graph as "x.weight" and transposed to
/// torch's [out, in]. The model is parsed by OnnxModelReader; every length is checked here.</summary>
public static class OnnxWeights
{
    public static TensorSet Read(string path) => Read(OnnxModelReader.ReadBytes(path), path);

    public static TensorSet Read(byte[] model, string source)
    {
        var parsed = OnnxModelReader.Read(model, source);
        var nodes = parsed.Nodes;
        var initializers = parsed.Initializers;
        var set = new TensorSet(source);
        try
        {
            var byName = new Dictionary<string, OnnxTensorView>(StringComparer.Ordinal);
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

    private static Tensor ToTensor(OnnxTensorView init, string source)
    {
        if (init.External)
        {
            throw new WeightFileException(source, $"initializer '{init.Name}' keeps its data in an external file, which is not supported; re-export with the weights inside the model");
        }

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

        var count = WeightFiles.Elements(source, init.Name, init.Dims);
        var bytes = WeightFiles.ByteCount(source, init.Name, init.Dims, count, size);
        var typedCount = type switch
        {
            ScalarType.Float32 => init.Floats.Count,
            ScalarType.Float64 => init.Doubles.Count,
            _ => init.Longs.Count,
        };

        // Check the data against the dims before allocating: the dims alone may claim terabytes.
        if (init.Raw is { } rawData && rawData.Length != bytes)
        {
            throw new WeightFileException(source, $"initializer '{init.Name}' [{string.Join(",", init.Dims)}] needs {bytes} bytes of data but has {rawData.Length}");
        }

        if (init.Raw is null && typedCount != count)
        {
            throw new WeightFileException(source, $"initializer '{init.Name}' [{string.Join(",", init.Dims)}] needs {count} values but has {typedCount}");
        }

        var tensor = empty(init.Dims, type);
        try
        {
            if (init.Raw is { } raw)
            {
                if (count > 0)
                {
                    raw.Span.CopyTo(tensor.bytes);
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
