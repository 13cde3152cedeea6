using System.Globalization;
using GraphCompiler.Registry;
using GraphCompiler.Runtime.Symbol;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Onnx;

/// <summary>How <see cref="OnnxExport.Export"/> writes the model.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>ai.onnx opset; 17 is the lowest with LayerNormalization, which the export relies on.</summary>
    public int Opset { get; init; } = 17;

    /// <summary>ONNX IR version 8 is the one that introduced opset 17; every runtime reading opset 17 reads it.</summary>
    public long IrVersion { get; init; } = 8;

    public string ProducerName { get; init; } = "GraphCompiler";

    public string ProducerVersion { get; init; } = "1";
}

/// <summary>A symbol graph the exporter cannot express in ONNX; the message names the node, its op and scope.</summary>
public sealed class OnnxExportException(string message) : Exception(message);

/// <summary>Writes a <see cref="SymbolGraph"/> with its parameters as an ONNX model (ai.onnx opset 17): one file for
/// every bucket ("batch" and "seq" stay symbolic dims), inputs named after the graph's arguments, outputs after its
/// heads, parameters as initializers under their checkpoint names (int8 weights of qlinear stored transposed,
/// "&lt;name&gt;.transposed", as MatMulInteger wants them).</summary>
public static class OnnxExport
{
    /// <summary>The ops whose ONNX mapping is written here rather than in the registry (for its completeness test).</summary>
    public static IReadOnlyCollection<string> ExporterOps => Builder.Lowerings.Keys;

    public static void Export(SymbolGraph graph, IReadOnlyDictionary<string, Tensor> parameters, string path, OnnxExportOptions? options = null)
    {
        options ??= new OnnxExportOptions();
        if (options.Opset < 17)
        {
            throw new ArgumentException($"opset {options.Opset} is too old: the export needs LayerNormalization (opset 17)", nameof(options));
        }

        var builder = new Builder(graph, parameters, options.Opset);
        var model = new OnnxModelProto(
            options.IrVersion,
            new Dictionary<string, long> { [""] = options.Opset },
            options.ProducerName,
            options.ProducerVersion,
            $"{graph.Model} ({graph.Precision}), exported from its symbol graph",
            builder.Build());
        model.Save(path);
    }

    /// <summary>Maps the symbol graph node by node; ONNX values are named "&lt;op&gt;_&lt;id&gt;" after the node they come from.</summary>
    private sealed class Builder(SymbolGraph graph, IReadOnlyDictionary<string, Tensor> parameters, int opset)
    {
        private readonly List<OnnxNodeProto> _nodes = new();
        private readonly List<OnnxTensorProto> _initializers = new();
        private readonly HashSet<string> _initialized = new(StringComparer.Ordinal);
        private readonly Dictionary<int, string> _values = new();
        private readonly Dictionary<int, SymbolNode> _byId = graph.Nodes.ToDictionary(n => n.Id);
        private readonly Dictionary<string, string> _dims = new(StringComparer.Ordinal);
        private int _counter;
        private SymbolNode _current = null!;

        public OnnxGraphProto Build()
        {
            foreach (var node in graph.Nodes)
            {
                _current = node;
                foreach (var input in node.Inputs)
                {
                    if (!_values.ContainsKey(input) && !(_byId.TryGetValue(input, out var source) && source.Op == OpNames.Param))
                    {
                        throw Error($"reads %{input}, which is not an earlier node");
                    }
                }

                if (node.Op == OpNames.Param)
                {
                    continue; // initializers are written on first use (qlinear wants its weight transposed)
                }

                _values[node.Id] = Lower(node);
            }

            var inputs = graph.Arguments.Select(a =>
            {
                var node = Node(a.Node, $"argument '{a.Name}'");
                if (node.Op != OpNames.Input)
                {
                    throw new OnnxExportException($"{graph.Model}: argument '{a.Name}' refers to %{a.Node} ({node.Op}), not an input node");
                }

                return new OnnxValueInfo(a.Name, DataType(node.Type.DType, node), node.Type.Shape);
            }).ToList();

            var outputs = new List<OnnxValueInfo>();
            foreach (var head in graph.Heads)
            {
                var node = Node(head.Node, $"head '{head.Name}'");
                _current = node;
                Emit("Identity", new[] { Value(head.Node) }, head.Name);
                outputs.Add(new OnnxValueInfo(head.Name, DataType(node.Type.DType, node), node.Type.Shape));
            }

            return new OnnxGraphProto(graph.Model, _nodes, _initializers, inputs, outputs);
        }

        private SymbolNode Node(int id, string what) =>
            _byId.TryGetValue(id, out var node) ? node : throw new OnnxExportException($"{graph.Model}: {what} refers to node %{id}, which the graph does not have");

        /// <summary>One node through its registry entry's ONNX mapping: one ONNX op, a mapping the registry builds, or
        /// one of <see cref="Lowerings"/> (those that read parameters, write initializers or resolve bucket dims).</summary>
        private string Lower(SymbolNode node)
        {
            if (node.Op == OpNames.Input)
            {
                var argument = graph.Arguments.FirstOrDefault(a => a.Node == node.Id)
                    ?? throw Error("is an input that no argument names");
                return argument.Name;
            }

            var mapping = OpRegistry.TryGet(node.Op, out var op) ? op.Onnx : null;
            switch (mapping?.Kind)
            {
                case OnnxKind.Direct:
                    return Emit(mapping.Text, node.Inputs.Select(Value).ToArray());
                case OnnxKind.Build:
                    return mapping.BuildGraph!(new RegistryBuilder(this, node));
                case OnnxKind.Exporter when Lowerings.TryGetValue(node.Op, out var lower):
                    return lower(this, node);
                default:
                    throw Error("has no ONNX export (supported: inference ops of the IR, including the qlinear family and qembedding)");
            }
        }

        /// <summary>The registry's Exporter mappings, written here.</summary>
        public static readonly Dictionary<string, Func<Builder, SymbolNode, string>> Lowerings = new(StringComparer.Ordinal)
        {
            [OpNames.Embedding] = (b, n) => b.Emit("Gather", new[] { b.In(n, 1), b.In(n, 0) }, attributes: OnnxAttribute.Int("axis", 0)),
            [OpNames.Rows] = (b, n) => b.Emit("Slice", new[] { b.In(n, 0), b.Const(0), b.Shape(b.DimList(n, "count")), b.Const(0) }),
            [OpNames.MatMul] = (b, n) =>
            {
                var right = b.In(n, 1);
                if (Flag(n, "transB"))
                {
                    right = b.SwapLast(right, b.InputRank(n, 1));
                }

                return b.Emit("MatMul", new[] { b.In(n, 0), right });
            },
            [OpNames.Linear] = (b, n) => b.Linear(n, gelu: false),
            [OpNames.LinearGelu] = (b, n) => b.Linear(n, gelu: true),
            [OpNames.Reshape] = (b, n) => b.Emit("Reshape", new[] { b.In(n, 0), b.Shape(b.DimList(n, "shape")) }),
            [OpNames.Transpose] = (b, n) =>
            {
                var rank = b.InputRank(n, 0);
                var perm = Enumerable.Range(0, rank).Select(i => (long)i).ToArray();
                var d0 = b.Axis(b.Int(n, "dim0"), rank);
                var d1 = b.Axis(b.Int(n, "dim1"), rank);
                (perm[d0], perm[d1]) = (perm[d1], perm[d0]);
                return b.Emit("Transpose", new[] { b.In(n, 0) }, attributes: OnnxAttribute.IntList("perm", perm));
            },
            [OpNames.Permute] = (b, n) =>
            {
                var rank = b.InputRank(n, 0);
                var order = b.Ints(n, "order").Select(o => (long)b.Axis(o, rank)).ToArray();
                if (order.Length != rank || order.Distinct().Count() != rank)
                {
                    throw b.Error($"order [{string.Join(",", order)}] is not a permutation of {rank} dimensions");
                }

                return b.Emit("Transpose", new[] { b.In(n, 0) }, attributes: OnnxAttribute.IntList("perm", order));
            },
            [OpNames.Gelu] = (b, n) => b.Gelu(b.In(n, 0), n.Type.DType),
            [OpNames.Select] = (b, n) => b.Emit("Gather", new[] { b.In(n, 0), b.ScalarInt64(b.Int(n, "index")) }, attributes: OnnxAttribute.Int("axis", b.Int(n, "dim"))),
            [OpNames.Slice] = (b, n) => b.Emit("Slice", new[] { b.In(n, 0), b.Const(b.Int(n, "start")), b.Const(b.Int(n, "end")), b.Const(b.Int(n, "dim")) }),
            [OpNames.Concat] = (b, n) => b.Emit("Concat", n.Inputs.Select(b.Value).ToArray(), attributes: OnnxAttribute.Int("axis", b.Int(n, "dim"))),
            [OpNames.LengthMask] = (b, n) => b.LengthMask(n),
            [OpNames.Sdpa] = (b, n) => b.Attention(n),
            [OpNames.QLinear] = (b, n) => b.QLinear(n),
            [OpNames.QLinearGelu] = (b, n) => b.QLinear(n),
            [OpNames.QLinearRequantize] = (b, n) => b.QLinear(n),
            [OpNames.QLinearGeluRequantize] = (b, n) => b.QLinear(n),
            [OpNames.QEmbedding] = (b, n) => b.QEmbedding(n),
        };

        private int Opset => opset;

        private string In(SymbolNode node, int i) => Value(node.Inputs[i]);

        private string Linear(SymbolNode node, bool gelu)
        {
            var y = Emit("MatMul", new[] { In(node, 0), Emit("Transpose", new[] { In(node, 1) }, attributes: OnnxAttribute.IntList("perm", 1, 0)) });
            if (node.Inputs.Count > 2)
            {
                y = Emit("Add", new[] { y, In(node, 2) });
            }

            return gelu ? Gelu(y, node.Type.DType) : y;
        }

        /// <summary>What a registry-built mapping sees: this node's inputs and attributes, and this graph's nodes.</summary>
        private sealed class RegistryBuilder(Builder builder, SymbolNode node) : IOnnxBuilder
        {
            public int InputCount => node.Inputs.Count;

            public int Opset => builder.Opset;

            public string Input(int index) => builder.In(node, index);

            public string Emit(string op, IReadOnlyList<string> inputs, params OnnxAttr[] attributes) =>
                builder.Emit(op, inputs.ToArray(), attributes: attributes.Select(Convert).ToArray());

            public string Scalar(double value) => builder.Scalar(value, node.Type.DType);

            public string Int64s(params long[] values) => builder.Const(values);

            public double Float(string key) => builder.Float(node, key);

            public long Int(string key) => builder.Int(node, key);

            private static OnnxAttribute Convert(OnnxAttr a) =>
                a.Integer is { } i ? OnnxAttribute.Int(a.Name, i)
                : a.Number is { } f ? OnnxAttribute.Float(a.Name, f)
                : OnnxAttribute.IntList(a.Name, a.Integers ?? Array.Empty<long>());
        }

        // ---- composite ops ----

        /// <summary>GELU, exact erf form: x·½·(1 + erf(x/√2)), written as the pattern ORT fuses into one Gelu kernel.</summary>
        private string Gelu(string x, string dtype)
        {
            var erf = Emit("Erf", new[] { Emit("Div", new[] { x, Scalar(Math.Sqrt(2.0), dtype) }) });
            var onePlus = Emit("Add", new[] { erf, Scalar(1.0, dtype) });
            return Emit("Mul", new[] { Emit("Mul", new[] { x, onePlus }), Scalar(0.5, dtype) });
        }

        private string Softmax(string x) => Emit("Softmax", new[] { x }, attributes: OnnxAttribute.Int("axis", -1));

        private string LayerNorm(string x, string weight, string bias, SymbolNode node) =>
            Emit("LayerNormalization", new[] { x, weight, bias }, attributes: new[]
            {
                OnnxAttribute.Int("axis", -1),
                OnnxAttribute.Float("epsilon", (float)Float(node, "eps")),
            });

        /// <summary>Kernels.LengthMask: [batch, 1, 1, seq], 0 below each valid length and the dtype's lowest finite
        /// value from it on.</summary>
        private string LengthMask(SymbolNode node)
        {
            var seq = node.Type.Shape[^1];
            var dtype = node.Type.DType;
            var positions = Emit("Range", new[] { ScalarInt64(0), DimScalar(seq), ScalarInt64(1) });
            var row = Emit("Unsqueeze", new[] { positions, Const(0) });
            var lengths = Emit("Unsqueeze", new[] { Value(node.Inputs[0]), Const(1) });
            var padded = Emit("GreaterOrEqual", new[] { row, lengths });
            var lowest = dtype == "f64" ? double.MinValue : float.MinValue;
            var mask = Emit("Where", new[] { padded, Scalar(lowest, dtype), Scalar(0.0, dtype) });
            return Emit("Unsqueeze", new[] { mask, Const(1, 2) });
        }

        /// <summary>Kernels.Attention without dropout: softmax(q·kᵀ/√d + mask)·v on [batch, heads, seq, d], the additive
        /// mask broadcast over heads and query positions, as scaled_dot_product_attention computes it.</summary>
        private string Attention(SymbolNode node)
        {
            var headDim = node.Type.Shape[^1];
            if (!long.TryParse(headDim, NumberStyles.Integer, CultureInfo.InvariantCulture, out var d) || d <= 0)
            {
                throw Error($"head dimension '{headDim}' is not a constant size");
            }

            var dtype = node.Type.DType;
            var keysT = SwapLast(Value(node.Inputs[1]), InputRank(node, 1));
            var scores = Emit("Mul", new[] { Emit("MatMul", new[] { Value(node.Inputs[0]), keysT }), Scalar(1.0 / Math.Sqrt(d), dtype) });
            var probs = Softmax(Emit("Add", new[] { scores, Value(node.Inputs[3]) }));
            return Emit("MatMul", new[] { probs, Value(node.Inputs[2]) });
        }

        /// <summary>qlinear / qlinear_gelu: x quantized to int8 (symmetric per tensor, zero point 0, round half to even,
        /// clamped to ±127), int8 GEMM with int32 accumulation, dequantized by input_scale × weight_scale[n], bias, GELU.
        /// Dynamic mode computes input_scale = max|x| / 127 in the graph. DynamicQuantizeLinear is not used: it makes
        /// uint8 with a zero point (asymmetric), a different quantization than the IR op's. An i8 x (from a
        /// *_requantize producer) goes to the GEMM as it is; the *_requantize ops quantize their result the same way
        /// with output_scale (their last input), static mode only.</summary>
        private string QLinear(SymbolNode node)
        {
            // The generated int8 graph carries no mode (it is a property of the module, Static by default): static.
            var mode = node.Attrs.TryGetValue("mode", out var m) ? m.Trim('"') : "static";
            if (mode is not ("static" or "dynamic"))
            {
                throw Error($"has mode '{mode}'; expected \"static\" or \"dynamic\"");
            }

            var requantize = OpNames.Requantizes(node.Op);
            var operands = requantize ? node.Inputs.Take(node.Inputs.Count - 1).ToList() : node.Inputs.ToList();
            if (operands.Count < 3 || (requantize && node.Inputs.Count < 5))
            {
                throw Error(requantize
                    ? "needs inputs (x, weight, weight_scale, input_scale[, bias], output_scale)"
                    : "needs inputs (x, weight, weight_scale[, input_scale][, bias])");
            }

            if (requantize && mode != "static")
            {
                throw Error("requantizes with a calibrated output_scale, which needs static mode");
            }

            var weight = Node(operands[1], "qlinear weight");
            if (weight.Op != OpNames.Param || weight.Type.DType != "i8" || weight.Type.Shape.Count != 2)
            {
                throw Error($"weight %{weight.Id} must be an i8 [N,K] parameter, got {weight.Op} {weight.Type.DType}[{string.Join(",", weight.Type.Shape)}]");
            }

            // After (x, weight, weight_scale): a rank-0 input is input_scale, a rank-1 input the bias.
            string? inputScale = null;
            string? bias = null;
            foreach (var extra in operands.Skip(3))
            {
                var rank = Node(extra, "qlinear input").Type.Shape.Count;
                if (rank == 0 && inputScale is null && bias is null)
                {
                    inputScale = Value(extra);
                }
                else if (rank == 1 && bias is null)
                {
                    bias = Value(extra);
                }
                else
                {
                    throw Error($"input %{extra} is neither input_scale (rank 0) nor bias (rank 1) in the order (input_scale, bias)");
                }
            }

            var x = Value(operands[0]);
            var quantizedInput = Node(operands[0], "qlinear input").Type.DType == "i8";
            string scale;
            if (mode == "static" || quantizedInput)
            {
                scale = inputScale ?? throw Error(quantizedInput ? "has an i8 input but no input_scale to read it with" : "is static but has no input_scale input");
            }
            else
            {
                var absMax = Emit("ReduceMax", new[] { Emit("Abs", new[] { x }) }, attributes: OnnxAttribute.Int("keepdims", 0));
                // An all-zero input quantizes to zeros under any positive scale; the floor keeps x/scale finite.
                scale = Emit("Max", new[] { Emit("Div", new[] { absMax, Scalar(127.0, "f32") }), Scalar(1.1754943508222875e-38, "f32") });
            }

            var quantized = quantizedInput ? x : Quantize(x, scale, clip: mode == "static");
            var accumulated = Emit("MatMulInteger", new[] { quantized, TransposedWeight(weight) });
            var floats = Emit("Cast", new[] { accumulated }, attributes: OnnxAttribute.Int("to", OnnxDataType.Float));
            var y = Emit("Mul", new[] { floats, Emit("Mul", new[] { scale, Value(operands[2]) }) });
            if (bias is not null)
            {
                y = Emit("Add", new[] { y, bias });
            }

            if (OpNames.HasGelu(node.Op))
            {
                y = Gelu(y, "f32");
            }

            return requantize ? Quantize(y, Value(node.Inputs[^1]), clip: true) : y;
        }

        /// <summary>QuantizeLinear with zero point 0; <paramref name="clip"/> narrows its [-128, 127] saturation to the
        /// IR's symmetric ±127 (dynamic scales never reach -128).</summary>
        private string Quantize(string x, string scale, bool clip)
        {
            var zero = Initializer(OnnxTensorProto.Of<sbyte>(Fresh("zero_i8"), OnnxDataType.Int8, Array.Empty<long>(), new sbyte[] { 0 }));
            var quantized = Emit("QuantizeLinear", new[] { x, scale, zero });
            if (!clip)
            {
                return quantized;
            }

            var low = Initializer(OnnxTensorProto.Of<sbyte>(Fresh("min_i8"), OnnxDataType.Int8, Array.Empty<long>(), new sbyte[] { -127 }));
            var high = Initializer(OnnxTensorProto.Of<sbyte>(Fresh("max_i8"), OnnxDataType.Int8, Array.Empty<long>(), new sbyte[] { 127 }));
            return Emit("Clip", new[] { quantized, low, high });
        }

        /// <summary>qembedding: Gather(table i8, ids) → Cast(float) → Mul by Gather(scale, ids) unsqueezed on the last
        /// axis, as Kernels.QuantizedEmbedding (the table stays int8 in the file; only looked-up rows are dequantized).</summary>
        private string QEmbedding(SymbolNode node)
        {
            if (node.Inputs.Count != 3)
            {
                throw Error($"needs inputs (ids, table, table_scale), got {node.Inputs.Count}");
            }

            var table = Node(node.Inputs[1], "qembedding table");
            if (table.Type.DType != "i8" || table.Type.Shape.Count != 2)
            {
                throw Error($"table %{table.Id} must be i8 [V,H], got {table.Type.DType}[{string.Join(",", table.Type.Shape)}]");
            }

            var ids = Value(node.Inputs[0]);
            var rows = Emit("Gather", new[] { Value(node.Inputs[1]), ids }, attributes: OnnxAttribute.Int("axis", 0));
            var floats = Emit("Cast", new[] { rows }, attributes: OnnxAttribute.Int("to", OnnxDataType.Float));
            var scales = Emit("Gather", new[] { Value(node.Inputs[2]), ids }, attributes: OnnxAttribute.Int("axis", 0));
            return Emit("Mul", new[] { floats, Emit("Unsqueeze", new[] { scales, Const(-1) }) });
        }

        // ---- values, constants, dims ----

        private string Value(int id)
        {
            if (_values.TryGetValue(id, out var name))
            {
                return name;
            }

            var node = Node(id, "an input");
            if (node.Op != OpNames.Param)
            {
                throw Error($"reads %{id}, which is not computed before it");
            }

            var paramName = ParamName(node);
            if (!_initialized.Contains(paramName))
            {
                using var data = ParameterData(node, paramName);
                _initializers.Add(new OnnxTensorProto(paramName, DataType(node.Type.DType, node), data.shape, data.bytes.ToArray()));
                _initialized.Add(paramName);
            }

            _values[id] = paramName;
            return paramName;
        }

        /// <summary>The int8 [N,K] weight as the [K,N] initializer MatMulInteger multiplies by.</summary>
        private string TransposedWeight(SymbolNode weight)
        {
            var name = ParamName(weight) + ".transposed";
            if (_initialized.Add(name))
            {
                using var data = ParameterData(weight, ParamName(weight));
                using var transposed = data.t().contiguous();
                _initializers.Add(new OnnxTensorProto(name, OnnxDataType.Int8, transposed.shape, transposed.bytes.ToArray()));
            }

            return name;
        }

        private string ParamName(SymbolNode node) =>
            node.Attrs.TryGetValue("name", out var name) && name.Length > 0 ? name.Trim('"') : throw Error("is a param without a \"name\" attribute");

        /// <summary>The parameter's tensor, checked against the node's type, on the CPU and contiguous (caller disposes).</summary>
        private Tensor ParameterData(SymbolNode node, string name)
        {
            if (!parameters.TryGetValue(name, out var tensor))
            {
                throw new OnnxExportException($"{graph.Model}: node %{node.Id} (param{ScopeText(node)}) needs parameter '{name}', which was not given");
            }

            var expected = ScalarTypeOf(node.Type.DType, node);
            var shape = node.Type.Shape.Select(d => long.TryParse(d, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : -1).ToArray();
            if (tensor.dtype != expected || !tensor.shape.SequenceEqual(shape))
            {
                throw new OnnxExportException(
                    $"{graph.Model}: parameter '{name}' (node %{node.Id}) is {tensor.dtype}[{string.Join(",", tensor.shape)}] but the graph declares {node.Type.DType}[{string.Join(",", node.Type.Shape)}]");
            }

            using var noGrad = no_grad();
            using var detached = tensor.detach();
            using var cpu = detached.cpu();
            return cpu.contiguous();
        }

        private string Emit(string opType, string[] inputs, string? output = null, params OnnxAttribute[] attributes)
        {
            output ??= Fresh(_current.Op + "_" + _current.Id.ToString(CultureInfo.InvariantCulture));
            var name = (string.IsNullOrEmpty(_current.Scope) ? "" : _current.Scope + "/") + output;
            _nodes.Add(new OnnxNodeProto(opType, inputs, new[] { output }, name, attributes));
            return output;
        }

        private string Fresh(string stem) => stem + "_" + (_counter++).ToString(CultureInfo.InvariantCulture);

        private string Initializer(OnnxTensorProto tensor)
        {
            _initializers.Add(tensor);
            return tensor.Name;
        }

        private string Const(params long[] values) => Initializer(OnnxTensorProto.Int64s(Fresh("const"), values));

        private string ScalarInt64(long value) => Initializer(OnnxTensorProto.Of<long>(Fresh("const"), OnnxDataType.Int64, Array.Empty<long>(), new[] { value }));

        /// <summary>A scalar of the graph's float type (f32 or f64).</summary>
        private string Scalar(double value, string dtype) => dtype switch
        {
            "f32" => Initializer(OnnxTensorProto.Of<float>(Fresh("const"), OnnxDataType.Float, Array.Empty<long>(), new[] { (float)value })),
            "f64" => Initializer(OnnxTensorProto.Of<double>(Fresh("const"), OnnxDataType.Double, Array.Empty<long>(), new[] { value })),
            _ => throw Error($"needs a floating-point type, got {dtype}"),
        };

        /// <summary>A 1-D int64 shape tensor; "batch"/"seq" are read from an argument that has them.</summary>
        private string Shape(IReadOnlyList<string> dims)
        {
            if (dims.All(IsNumber))
            {
                return Const(dims.Select(d => long.Parse(d, CultureInfo.InvariantCulture)).ToArray());
            }

            var parts = dims.Select(d => IsNumber(d) ? Const(long.Parse(d, CultureInfo.InvariantCulture)) : DimTensor(d)).ToArray();
            return parts.Length == 1 ? parts[0] : Emit("Concat", parts, attributes: OnnxAttribute.Int("axis", 0));
        }

        /// <summary>The size of a symbolic dim as a 1-element int64 tensor, read once from the first argument with it.</summary>
        private string DimTensor(string symbol)
        {
            if (_dims.TryGetValue(symbol, out var name))
            {
                return name;
            }

            foreach (var argument in graph.Arguments)
            {
                var input = Node(argument.Node, $"argument '{argument.Name}'");
                var axis = input.Type.Shape.ToList().IndexOf(symbol);
                if (axis >= 0)
                {
                    // Emitted at the point of first use, so it runs after the argument exists (arguments exist first).
                    name = Emit("Shape", new[] { argument.Name }, "dim_" + symbol, OnnxAttribute.Int("start", axis), OnnxAttribute.Int("end", axis + 1));
                    _dims[symbol] = name;
                    return name;
                }
            }

            throw Error($"uses the dimension '{symbol}', which no model input has, so the ONNX graph cannot know its size");
        }

        private string DimScalar(string dim) =>
            IsNumber(dim) ? ScalarInt64(long.Parse(dim, CultureInfo.InvariantCulture)) : Emit("Squeeze", new[] { DimTensor(dim), Const(0) });

        private string SwapLast(string value, int rank)
        {
            var perm = Enumerable.Range(0, rank).Select(i => (long)i).ToArray();
            (perm[rank - 1], perm[rank - 2]) = (perm[rank - 2], perm[rank - 1]);
            return Emit("Transpose", new[] { value }, attributes: OnnxAttribute.IntList("perm", perm));
        }

        private int InputRank(SymbolNode node, int i) => Node(node.Inputs[i], "an input").Type.Shape.Count;

        private int Axis(long axis, int rank)
        {
            var a = axis < 0 ? axis + rank : axis;
            return a >= 0 && a < rank ? (int)a : throw Error($"dimension {axis} is out of range for rank {rank}");
        }

        // ---- attributes (canonical IR text) ----

        private string Attr(SymbolNode node, string key) =>
            node.Attrs.TryGetValue(key, out var v) ? v : throw Error($"has no attribute '{key}'");

        private long Int(SymbolNode node, string key) =>
            long.TryParse(Attr(node, key), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw Error($"attribute {key}={Attr(node, key)} is not an integer");

        private double Float(SymbolNode node, string key) =>
            double.TryParse(Attr(node, key), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : throw Error($"attribute {key}={Attr(node, key)} is not a number");

        private static bool Flag(SymbolNode node, string key) => node.Attrs.TryGetValue(key, out var v) && v == "true";

        private IReadOnlyList<string> DimList(SymbolNode node, string key) => List(Attr(node, key));

        private long[] Ints(SymbolNode node, string key) =>
            List(Attr(node, key)).Select(s => long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw Error($"attribute {key} has '{s}', not an integer")).ToArray();

        private static IReadOnlyList<string> List(string text) =>
            text.Trim('[', ']').Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        private static bool IsNumber(string dim) => long.TryParse(dim, NumberStyles.Integer, CultureInfo.InvariantCulture, out _);

        private int DataType(string dtype, SymbolNode node) => dtype switch
        {
            "f32" => OnnxDataType.Float,
            "f64" => OnnxDataType.Double,
            "i64" => OnnxDataType.Int64,
            "i32" => OnnxDataType.Int32,
            "i8" => OnnxDataType.Int8,
            _ => throw new OnnxExportException($"{graph.Model}: node %{node.Id} ({node.Op}{ScopeText(node)}) has dtype '{dtype}', which the export does not know"),
        };

        private ScalarType ScalarTypeOf(string dtype, SymbolNode node) => DataType(dtype, node) switch
        {
            OnnxDataType.Float => ScalarType.Float32,
            OnnxDataType.Double => ScalarType.Float64,
            OnnxDataType.Int64 => ScalarType.Int64,
            OnnxDataType.Int32 => ScalarType.Int32,
            _ => ScalarType.Int8,
        };

        private static string ScopeText(SymbolNode node) => string.IsNullOrEmpty(node.Scope) ? "" : ", scope " + node.Scope;

        private OnnxExportException Error(string problem) =>
            new($"{graph.Model}: node %{_current.Id} ({_current.Op}{ScopeText(_current)}) {problem}");
    }
}
