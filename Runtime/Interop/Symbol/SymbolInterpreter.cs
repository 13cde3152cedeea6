using System.Globalization;
using GraphCompiler.Registry;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Symbol;

/// <summary>One compiled node: its input values and the bucket's sizes → its value.</summary>
public delegate Tensor SymbolKernel(Tensor[] inputs, long batch, long seq);

/// <summary>The symbol interpreter: each node runs the kernel its op's registry entry names (<see cref="OpRegistry"/>),
/// with the arguments that entry maps from the node's inputs and attributes, the same call the generated code makes, so an
/// imported graph computes what the generated module does. Attributes are parsed once, when a node is compiled; dims
/// ("batch", "seq") resolve per run. Inference: dropout is the identity, int8 GEMMs use the calibrated (static) scales.</summary>
public static class SymbolInterpreter
{
    public const string Input = OpNames.Input;

    public const string Param = OpNames.Param;

    /// <summary>The kernels by the registry's binding name: each passes the prepared arguments to the method in its
    /// parameter order. Which input or attribute goes where is the registry's, not this table's.</summary>
    private static readonly Dictionary<string, Func<KernelArgs, Tensor>> Bindings = new(StringComparer.Ordinal)
    {
        ["Kernels.Embedding"] = a => Kernels.Embedding(a.T(0), a.T(1)),
        ["Kernels.Rows"] = a => Kernels.Rows(a.T(0), a.L(1)),
        ["Kernels.MatMul"] = a => Kernels.MatMul(a.T(0), a.T(1), a.B(2)),
        ["Kernels.Linear"] = a => Kernels.Linear(a.T(0), a.T(1), a.OptionalT(2)),
        ["Kernels.LinearGelu"] = a => Kernels.LinearGelu(a.T(0), a.T(1), a.OptionalT(2)),
        ["Kernels.QuantizedLinear"] = a => Kernels.QuantizedLinear(a.T(0), a.T(1), a.T(2), a.T(3), a.OptionalT(4), a.B(5), a.Mode(6)),
        ["Kernels.QuantizedLinearRequantize"] = a => Kernels.QuantizedLinearRequantize(a.T(0), a.T(1), a.T(2), a.T(3), a.OptionalT(4), a.B(5), a.T(6), a.Mode(7)),
        ["Kernels.QuantizedEmbedding"] = a => Kernels.QuantizedEmbedding(a.T(0), a.T(1), a.T(2)),
        ["torch.add"] = a => add(a.T(0), a.T(1)),
        ["torch.sub"] = a => sub(a.T(0), a.T(1)),
        ["torch.mul"] = a => a.IsTensor(1) ? mul(a.T(0), a.T(1)) : mul(a.T(0), a.D(1)),
        ["Tensor.reshape"] = a => a.T(0).reshape(a.Longs(1)),
        ["Tensor.transpose"] = a => a.T(0).transpose(a.L(1), a.L(2)),
        ["Tensor.permute"] = a => a.T(0).permute(a.Longs(1)),
        ["torch.softmax"] = a => softmax(a.T(0), (int)a.L(1)),
        ["Kernels.MaskedSoftmax"] = a => Kernels.MaskedSoftmax(a.T(0), a.T(1)),
        ["Kernels.LayerNorm"] = a => Kernels.LayerNorm(a.T(0), a.T(1), a.T(2), a.D(3)),
        ["Kernels.AddLayerNorm"] = a => Kernels.AddLayerNorm(a.T(0), a.T(1), a.T(2), a.T(3), a.D(4)),
        ["Kernels.RmsNorm"] = a => Kernels.RmsNorm(a.T(0), a.T(1), a.D(2)),
        ["Kernels.Gelu"] = a => Kernels.Gelu(a.T(0)),
        ["Kernels.Silu"] = a => Kernels.Silu(a.T(0)),
        ["torch.tanh"] = a => tanh(a.T(0)),
        ["Kernels.Dropout"] = a => Kernels.Dropout(a.T(0), a.D(1), a.B(2)),
        ["Tensor.select"] = a => a.T(0).select(a.L(1), a.L(2)),
        ["Tensor.narrow"] = a => a.T(0).narrow(a.L(1), a.L(2), a.L(3)),
        ["torch.cat"] = a => cat(a.All(0), a.L(1)),
        ["Kernels.LengthMask"] = a => Kernels.LengthMask(a.T(0), a.L(1), a.DType(2)),
        ["Kernels.Attention"] = a => Kernels.Attention(a.T(0), a.T(1), a.T(2), a.T(3), a.D(4), a.B(5)),
    };

    /// <summary>The kernels this table binds (for the registry's completeness test).</summary>
    public static IReadOnlyCollection<string> BoundKernels => Bindings.Keys;

    /// <summary>Every op a symbol file may use: the registry's ops of exported graphs plus input and param.</summary>
    public static IReadOnlySet<string> SupportedOps { get; } = new HashSet<string>(
        OpRegistry.All.Where(o => o.InSymbolGraphs).Select(o => o.Name).Append(Input).Append(Param), StringComparer.Ordinal);

    /// <summary>The kernel of a computing node, its attributes parsed and its arity checked now (errors name the file
    /// and the node).</summary>
    public static SymbolKernel Compile(SymbolNode node, string sourceName)
    {
        if (!OpRegistry.TryGet(node.Op, out var op) || !op.InSymbolGraphs || op.Kernel is null || !Bindings.TryGetValue(op.Kernel.BindingName, out var binding))
        {
            throw new SymbolFileException(sourceName, SymbolTypes.Describe(node), node.Op is Input or Param
                ? $"{node.Op} nodes are bound, not computed"
                : $"unknown op '{node.Op}'");
        }

        var reader = new NodeReader(node, sourceName);
        reader.CheckArity(op.MinInputs, op.MaxInputs);
        var plan = op.Kernel.BoundArgs.Select(reader.Prepare).ToArray();
        return (x, b, s) => binding(new KernelArgs(plan, x, b, s));
    }

    /// <summary>A registry kernel argument with its attribute already parsed.</summary>
    internal sealed record Prepared(KernelArg Arg, long Long = 0, double Double = 0, bool Flag = false, long[]? Longs = null, string[]? Dims = null, ScalarType DType = ScalarType.Float32);

    /// <summary>One call's arguments: the prepared plan over this run's inputs and bucket sizes.</summary>
    private readonly struct KernelArgs(Prepared[] plan, Tensor[] inputs, long batch, long seq)
    {
        public bool IsTensor(int i) => plan[i].Arg.Kind is ArgKind.Input or ArgKind.OptionalInput or ArgKind.LastInput;

        public Tensor T(int i) => plan[i].Arg.Kind switch
        {
            ArgKind.Input => inputs[plan[i].Arg.Index],
            ArgKind.LastInput => inputs[^1],
            var kind => throw Mismatch(i, kind, "a tensor"),
        };

        public Tensor? OptionalT(int i) => plan[i].Arg.Kind == ArgKind.OptionalInput
            ? inputs.Length >= plan[i].Arg.PresentFrom ? inputs[plan[i].Arg.Index] : null
            : T(i);

        public Tensor[] All(int i) => plan[i].Arg.Kind == ArgKind.AllInputs ? inputs : throw Mismatch(i, plan[i].Arg.Kind, "every input");

        public long L(int i) => plan[i].Arg.Kind switch
        {
            ArgKind.Int or ArgKind.Span or ArgKind.ConstInt => plan[i].Long,
            ArgKind.Dims or ArgKind.ResultLastDim when plan[i].Dims!.Length == 1 => SymbolTypes.Resolve(plan[i].Dims![0], batch, seq),
            var kind => throw Mismatch(i, kind, "an integer"),
        };

        public double D(int i) => plan[i].Arg.Kind == ArgKind.Float ? plan[i].Double : throw Mismatch(i, plan[i].Arg.Kind, "a number");

        public bool B(int i) => plan[i].Arg.Kind is ArgKind.Bool or ArgKind.ConstBool or ArgKind.Training ? plan[i].Flag : throw Mismatch(i, plan[i].Arg.Kind, "a flag");

        public long[] Longs(int i) => plan[i].Arg.Kind switch
        {
            ArgKind.Ints => plan[i].Longs!,
            ArgKind.Dims => SymbolTypes.Resolve(plan[i].Dims!, batch, seq),
            var kind => throw Mismatch(i, kind, "integers"),
        };

        public ScalarType DType(int i) => plan[i].Arg.Kind == ArgKind.ResultDType ? plan[i].DType : throw Mismatch(i, plan[i].Arg.Kind, "a dtype");

        public Quantization.ActivationQuantization Mode(int i) =>
            plan[i].Arg.Kind == ArgKind.Mode ? Quantization.ActivationQuantization.Static : throw Mismatch(i, plan[i].Arg.Kind, "a quantization mode");

        // A binding reading an argument as what the registry does not make it: a bug, caught by the symbol tests.
        private static InvalidOperationException Mismatch(int i, ArgKind kind, string wanted) =>
            new($"kernel argument {i} is {kind} in the op registry, but its interpreter binding reads {wanted}");
    }

    /// <summary>A node's attributes in the IR's canonical text, parsed with errors that name the node.</summary>
    public sealed class NodeReader(SymbolNode node, string sourceName)
    {
        public SymbolNode Node => node;

        public ScalarType ResultType => SymbolTypes.ToScalarType(node.Type.DType);

        public SymbolFileException Error(string problem) => new(sourceName, SymbolTypes.Describe(node), problem);

        public void CheckArity(int min, int max)
        {
            if (node.Inputs.Count < min || node.Inputs.Count > max)
            {
                var wanted = min == max ? min.ToString(CultureInfo.InvariantCulture) : max == int.MaxValue ? $"at least {min}" : $"{min} to {max}";
                throw Error($"{node.Op} takes {wanted} inputs, got {node.Inputs.Count}");
            }
        }

        /// <summary>A registry kernel argument, its attributes parsed now (inference: training off, static int8 scales).</summary>
        internal Prepared Prepare(KernelArg arg)
        {
            switch (arg.Kind)
            {
                case ArgKind.Int:
                    return new Prepared(arg, Long: Int(arg.Key!));
                case ArgKind.Float:
                    return new Prepared(arg, Double: Float(arg.Key!));
                case ArgKind.Bool:
                    return new Prepared(arg, Flag: Flag(arg.Key!));
                case ArgKind.Ints:
                    return new Prepared(arg, Longs: Ints(arg.Key!));
                case ArgKind.Dims:
                    return new Prepared(arg, Dims: Dims(arg.Key!, arg.Count));
                case ArgKind.Span:
                    {
                        var (start, end) = (Int(arg.Key!), Int(arg.EndKey!));
                        return end < start ? throw Error($"{node.Op} {arg.EndKey} {end} is before its {arg.Key} {start}") : new Prepared(arg, Long: end - start);
                    }

                case ArgKind.ResultLastDim:
                    return node.Type.Shape.Count > 0 ? new Prepared(arg, Dims: new[] { node.Type.Shape[^1] }) : throw Error($"{node.Op}'s type needs a last dimension");
                case ArgKind.ResultDType:
                    return new Prepared(arg, DType: ResultType);
                case ArgKind.ConstInt:
                    return new Prepared(arg, Long: arg.Value);
                case ArgKind.ConstBool:
                    return new Prepared(arg, Flag: arg.Value != 0);
                case ArgKind.Training:
                    if (arg.Key is not null)
                    {
                        _ = Float(arg.Key); // never applied in inference, but it must be well-formed
                    }

                    return new Prepared(arg, Flag: false);
                case ArgKind.Input or ArgKind.OptionalInput or ArgKind.LastInput or ArgKind.AllInputs or ArgKind.Mode:
                    return new Prepared(arg);
                default:
                    throw Error($"{node.Op} needs a {arg.Kind} argument, which a symbol graph cannot supply");
            }
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
