using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Symbol;

/// <summary>One compiled node: its input values and the bucket's sizes → its value.</summary>
public delegate Tensor SymbolKernel(Tensor[] inputs, long batch, long seq);

/// <summary>The op → kernel table of the symbol interpreter: the inference half of Generator/Emit/NodeEmitter, calling
/// the same <see cref="Kernels"/> with the same arguments, so an imported graph computes what the generated module does.
/// Attributes are parsed once, when a node is compiled; dims ("batch", "seq") resolve per run. Adding an op is one
/// entry here.</summary>
public static class SymbolInterpreter
{
    public const string Input = "input";

    public const string Param = "param";

    private static readonly Dictionary<string, Func<NodeReader, SymbolKernel>> Ops = new(StringComparer.Ordinal)
    {
        ["embedding"] = n => n.Arity(2, (x, _, _) => Kernels.Embedding(x[0], x[1])),
        ["rows"] = n =>
        {
            var count = n.Dims("count", 1);
            return n.Arity(1, (x, b, s) => Kernels.Rows(x[0], SymbolTypes.Resolve(count[0], b, s)));
        },
        ["matmul"] = n =>
        {
            var transB = n.Flag("transB");
            return n.Arity(2, (x, _, _) => Kernels.MatMul(x[0], x[1], transB));
        },
        ["linear"] = n => n.Arity(2, 3, (x, _, _) => Kernels.Linear(x[0], x[1], x.Length > 2 ? x[2] : null)),
        ["linear_gelu"] = n => n.Arity(2, 3, (x, _, _) => Kernels.LinearGelu(x[0], x[1], x.Length > 2 ? x[2] : null)),
        // int8 GEMMs: (x, weight i8, weight_scale, input_scale, bias?) with the calibrated (static) activation scale.
        ["qlinear"] = n => n.Arity(4, 5, (x, _, _) => Kernels.QuantizedLinear(x[0], x[3], x[1], x[2], x.Length > 4 ? x[4] : null, gelu: false, Quantization.ActivationQuantization.Static)),
        ["qlinear_gelu"] = n => n.Arity(4, 5, (x, _, _) => Kernels.QuantizedLinear(x[0], x[3], x[1], x[2], x.Length > 4 ? x[4] : null, gelu: true, Quantization.ActivationQuantization.Static)),
        // ... and those whose output feeds the next int8 GEMM: (..., bias?, output_scale) → i8.
        ["qlinear_requantize"] = n => n.Arity(5, 6, (x, _, _) => Kernels.QuantizedLinearRequantize(x[0], x[3], x[1], x[2], x.Length > 5 ? x[4] : null, gelu: false, x[^1], Quantization.ActivationQuantization.Static)),
        ["qlinear_gelu_requantize"] = n => n.Arity(5, 6, (x, _, _) => Kernels.QuantizedLinearRequantize(x[0], x[3], x[1], x[2], x.Length > 5 ? x[4] : null, gelu: true, x[^1], Quantization.ActivationQuantization.Static)),
        // int8 table (ids, table i8, per-row scale), dequantized on lookup.
        ["qembedding"] = n => n.Arity(3, (x, _, _) => Kernels.QuantizedEmbedding(x[0], x[1], x[2])),
        ["add"] = n => n.Arity(2, (x, _, _) => add(x[0], x[1])),
        ["sub"] = n => n.Arity(2, (x, _, _) => sub(x[0], x[1])),
        ["mul"] = n => n.Arity(2, (x, _, _) => mul(x[0], x[1])),
        ["scale"] = n =>
        {
            var factor = n.Float("factor");
            return n.Arity(1, (x, _, _) => mul(x[0], factor));
        },
        ["reshape"] = n =>
        {
            var shape = n.Dims("shape");
            return n.Arity(1, (x, b, s) => x[0].reshape(SymbolTypes.Resolve(shape, b, s)));
        },
        ["transpose"] = n =>
        {
            var (dim0, dim1) = (n.Int("dim0"), n.Int("dim1"));
            return n.Arity(1, (x, _, _) => x[0].transpose(dim0, dim1));
        },
        ["permute"] = n =>
        {
            var order = n.Ints("order");
            return n.Arity(1, (x, _, _) => x[0].permute(order));
        },
        ["softmax"] = n => n.Arity(1, (x, _, _) => softmax(x[0], -1)),
        ["masked_softmax"] = n => n.Arity(2, (x, _, _) => Kernels.MaskedSoftmax(x[0], x[1])),
        ["layer_norm"] = n =>
        {
            var eps = n.Float("eps");
            return n.Arity(3, (x, _, _) => Kernels.LayerNorm(x[0], x[1], x[2], eps));
        },
        ["add_layer_norm"] = n =>
        {
            var eps = n.Float("eps");
            return n.Arity(4, (x, _, _) => Kernels.AddLayerNorm(x[0], x[1], x[2], x[3], eps));
        },
        ["gelu"] = n => n.Arity(1, (x, _, _) => Kernels.Gelu(x[0])),
        ["tanh"] = n => n.Arity(1, (x, _, _) => tanh(x[0])),
        // Inference: dropout is the identity (an alias), as the generated eval forward does.
        ["dropout"] = n =>
        {
            var p = n.Float("p");
            return n.Arity(1, (x, _, _) => Kernels.Dropout(x[0], p, training: false));
        },
        ["select"] = n =>
        {
            var (dim, index) = (n.Int("dim"), n.Int("index"));
            return n.Arity(1, (x, _, _) => x[0].select(dim, index));
        },
        ["slice"] = n =>
        {
            var (dim, start, end) = (n.Int("dim"), n.Int("start"), n.Int("end"));
            return end < start ? throw n.Error($"slice end {end} is before its start {start}") : n.Arity(1, (x, _, _) => x[0].narrow(dim, start, end - start));
        },
        ["concat"] = n =>
        {
            var dim = n.Int("dim");
            return n.Arity(1, int.MaxValue, (x, _, _) => cat(x, dim));
        },
        // Inputs: the valid lengths and the tensor whose sequence length the mask takes (its size is in the type).
        ["length_mask"] = n =>
        {
            var length = n.Node.Type.Shape.Count > 0 ? n.Node.Type.Shape[^1] : throw n.Error("a length mask's type needs a last (sequence) dimension");
            var dtype = n.ResultType;
            return n.Arity(1, 2, (x, b, s) => Kernels.LengthMask(x[0], SymbolTypes.Resolve(length, b, s), dtype));
        },
        ["sdpa"] = n =>
        {
            _ = n.Float("dropout"); // inference: never applied, but it must be well-formed
            return n.Arity(4, (x, _, _) => Kernels.Attention(x[0], x[1], x[2], x[3], 0.0, training: false));
        },
    };

    /// <summary>Every op a symbol file may use: the computing ops above plus input and param.</summary>
    public static IReadOnlySet<string> SupportedOps { get; } = new HashSet<string>(Ops.Keys.Append(Input).Append(Param), StringComparer.Ordinal);

    /// <summary>The kernel of a computing node, its attributes parsed and its arity checked now (errors name the file
    /// and the node).</summary>
    public static SymbolKernel Compile(SymbolNode node, string sourceName)
    {
        if (!Ops.TryGetValue(node.Op, out var factory))
        {
            throw new SymbolFileException(sourceName, SymbolTypes.Describe(node), node.Op is Input or Param
                ? $"{node.Op} nodes are bound, not computed"
                : $"unknown op '{node.Op}'");
        }

        return factory(new NodeReader(node, sourceName));
    }

    /// <summary>A node's attributes in the IR's canonical text, parsed with errors that name the node.</summary>
    public sealed class NodeReader(SymbolNode node, string sourceName)
    {
        public SymbolNode Node => node;

        public ScalarType ResultType => SymbolTypes.ToScalarType(node.Type.DType);

        public SymbolFileException Error(string problem) => new(sourceName, SymbolTypes.Describe(node), problem);

        public SymbolKernel Arity(int count, SymbolKernel kernel) => Arity(count, count, kernel);

        public SymbolKernel Arity(int min, int max, SymbolKernel kernel)
        {
            if (node.Inputs.Count < min || node.Inputs.Count > max)
            {
                var wanted = min == max ? min.ToString(CultureInfo.InvariantCulture) : max == int.MaxValue ? $"at least {min}" : $"{min} to {max}";
                throw Error($"{node.Op} takes {wanted} inputs, got {node.Inputs.Count}");
            }

            return kernel;
        }

        public string Text(string key) =>
            node.Attrs.TryGetValue(key, out var value) ? value : throw Error($"attribute '{key}' is missing");

        public long Int(string key) =>
            long.TryParse(Text(key), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : throw Error($"attribute {key}={Text(key)} is not an integer");

        public double Float(string key) =>
            double.TryParse(Text(key), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : throw Error($"attribute {key}={Text(key)} is not a number");

        public bool Flag(string key) => Text(key) switch
        {
            "true" => true,
            "false" => false,
            var t => throw Error($"attribute {key}={t} is not true or false"),
        };

        public long[] Ints(string key) =>
            List(key).Select(s => long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : throw Error($"attribute {key}={Text(key)}: '{s}' is not an integer")).ToArray();

        /// <summary>A dim list ("[batch,seq,12,32]", "[batch,seq,-1]"), each "batch", "seq" or an integer.</summary>
        public string[] Dims(string key, int? count = null)
        {
            var dims = List(key).ToArray();
            var bad = dims.FirstOrDefault(d => !SymbolTypes.IsAttributeDim(d));
            if (bad is not null)
            {
                throw Error($"attribute {key}={Text(key)}: '{bad}' is not a dimension (batch, seq or an integer)");
            }

            if (count is not null && dims.Length != count)
            {
                throw Error($"attribute {key}={Text(key)} must hold {count} dimension(s)");
            }

            return dims;
        }

        private IEnumerable<string> List(string key)
        {
            var text = Text(key);
            if (text.Length < 2 || text[0] != '[' || text[^1] != ']')
            {
                throw Error($"attribute {key}={text} is not a list [a,b,…]");
            }

            return text.Length == 2 ? Enumerable.Empty<string>() : text[1..^1].Split(',').Select(s => s.Trim());
        }
    }
}
