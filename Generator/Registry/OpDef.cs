using System;
using System.Collections.Generic;
using System.Linq;

namespace GraphCompiler.Registry
{
    /// <summary>Where an op appears; the kind decides which bindings it must have (see <see cref="OpDef.Requires"/>).</summary>
    public enum OpKind
    {
        /// <summary>Bound, not computed: graph inputs, parameters, and a backward graph's saved values and output grads.</summary>
        Source,

        /// <summary>Produced by lowering a declaration: kernel, gradient (or a reason), interpreter and ONNX.</summary>
        Primitive,

        /// <summary>Produced by a fusion pass on inference graphs: kernel, interpreter and ONNX.</summary>
        Fused,

        /// <summary>The int8 variant's ops: kernel, interpreter and ONNX.</summary>
        Quantized,

        /// <summary>The calibration forward's ops: a kernel only.</summary>
        Calibration,

        /// <summary>Training forwards only (explicit dropout masks): a kernel only.</summary>
        Training,

        /// <summary>Backward graphs (autodiff's gradient ops): a kernel only.</summary>
        Gradient,
    }

    public enum AttrType
    {
        Int,
        Float,
        Bool,
        Ints,
        Dims,
        Text,
    }

    /// <summary>One attribute of an op, in the IR's canonical text form.</summary>
    public sealed class AttrSpec
    {
        public AttrSpec(string key, AttrType type, bool optional = false)
        {
            Key = key;
            Type = type;
            Optional = optional;
        }

        public string Key { get; }

        public AttrType Type { get; }

        /// <summary>Absent on some nodes (e.g. qlinear's mode, set only on dynamic exports).</summary>
        public bool Optional { get; }
    }

    public enum ArgKind
    {
        /// <summary>Input <see cref="KernelArg.Index"/>.</summary>
        Input,

        /// <summary>Input <see cref="KernelArg.Index"/> when the node has at least <see cref="KernelArg.PresentFrom"/> inputs, else null.</summary>
        OptionalInput,

        /// <summary>The node's last input.</summary>
        LastInput,

        /// <summary>Every input, as an array.</summary>
        AllInputs,

        Int,
        Float,

        /// <summary>A true/false attribute (written with <see cref="KernelArg.Label"/> when it has one).</summary>
        Bool,

        /// <summary>An integer list attribute, spread as longs.</summary>
        Ints,

        /// <summary>A dimension list attribute (bucket symbols resolve to the bucket's sizes), spread as longs.</summary>
        Dims,

        /// <summary>A text attribute, as a string literal.</summary>
        Text,

        /// <summary>Attribute <see cref="KernelArg.EndKey"/> minus attribute <see cref="KernelArg.Key"/> (a length from a range).</summary>
        Span,

        /// <summary>The size of the result's last dimension.</summary>
        ResultLastDim,

        /// <summary>The result's element type as a TorchSharp ScalarType.</summary>
        ResultDType,

        /// <summary>The integer <see cref="KernelArg.Value"/>.</summary>
        ConstInt,

        /// <summary>The flag <see cref="KernelArg.Value"/> != 0, written with its label.</summary>
        ConstBool,

        /// <summary>The caller's training flag (false in the interpreter); false outright when attribute
        /// <see cref="KernelArg.Key"/> is zero.</summary>
        Training,

        /// <summary>The int8 module's activation quantization mode (static in the interpreter).</summary>
        Mode,

        /// <summary>The calibration forward's activation observer (no interpreter binding).</summary>
        Observer,
    }

    /// <summary>One argument of a kernel call: where its value comes from. The emitter writes it as C#; the interpreter
    /// resolves it to a value; so the mapping from a node's inputs and attributes to a kernel's parameters is written once.</summary>
    public sealed class KernelArg
    {
        private KernelArg(ArgKind kind, int index = 0, string? key = null, string? endKey = null, string? label = null, long value = 0, int presentFrom = 0, int? count = null)
        {
            Kind = kind;
            Index = index;
            Key = key;
            EndKey = endKey;
            Label = label;
            Value = value;
            PresentFrom = presentFrom;
            Count = count;
        }

        public ArgKind Kind { get; }

        public int Index { get; }

        public string? Key { get; }

        public string? EndKey { get; }

        /// <summary>A C# argument name the emitter writes before the value ("transB: ", "gelu: ").</summary>
        public string? Label { get; }

        public long Value { get; }

        public int PresentFrom { get; }

        /// <summary>For <see cref="ArgKind.Dims"/>: the number of dimensions the attribute must hold.</summary>
        public int? Count { get; }

        public static KernelArg In(int index) => new(ArgKind.Input, index);

        public static KernelArg Optional(int index, int presentFrom) => new(ArgKind.OptionalInput, index, presentFrom: presentFrom);

        public static KernelArg Last() => new(ArgKind.LastInput);

        public static KernelArg All() => new(ArgKind.AllInputs);

        public static KernelArg Int(string key) => new(ArgKind.Int, key: key);

        public static KernelArg Float(string key) => new(ArgKind.Float, key: key);

        public static KernelArg Bool(string key, string? label = null) => new(ArgKind.Bool, key: key, label: label);

        public static KernelArg Ints(string key) => new(ArgKind.Ints, key: key);

        public static KernelArg Dims(string key, int? count = null) => new(ArgKind.Dims, key: key, count: count);

        public static KernelArg Text(string key) => new(ArgKind.Text, key: key);

        public static KernelArg Span(string startKey, string endKey) => new(ArgKind.Span, key: startKey, endKey: endKey);

        public static KernelArg ResultLastDim() => new(ArgKind.ResultLastDim);

        public static KernelArg ResultDType() => new(ArgKind.ResultDType);

        public static KernelArg Const(long value) => new(ArgKind.ConstInt, value: value);

        public static KernelArg Flag(string label, bool value) => new(ArgKind.ConstBool, label: label, value: value ? 1 : 0);

        public static KernelArg Training(string? offWhenZero = null) => new(ArgKind.Training, key: offWhenZero);

        public static KernelArg Mode() => new(ArgKind.Mode);

        public static KernelArg Observer() => new(ArgKind.Observer);

        /// <summary>The attributes this argument reads.</summary>
        public IEnumerable<string> Keys()
        {
            if (Key is not null)
            {
                yield return Key;
            }

            if (EndKey is not null)
            {
                yield return EndKey;
            }
        }
    }

    /// <summary>The kernel an op runs: a static call (<c>Kernels.LayerNorm(...)</c>, <c>torch.add(...)</c>) or a method
    /// on its first input (<c>x.reshape(...)</c>).</summary>
    public sealed class KernelCall
    {
        private KernelCall(string target, bool onInput, KernelArg[] args)
        {
            Target = target;
            OnInput = onInput;
            Args = args;
        }

        /// <summary>The static method's qualified name, or the tensor method's name.</summary>
        public string Target { get; }

        /// <summary>Called on input 0 (which is then not among <see cref="Args"/>).</summary>
        public bool OnInput { get; }

        /// <summary>The written arguments (without the receiver of a method call).</summary>
        public IReadOnlyList<KernelArg> Args { get; }

        /// <summary>The runtime's binding name: the static target, or "Tensor.name" for a method.</summary>
        public string BindingName => OnInput ? "Tensor." + Target : Target;

        /// <summary>The arguments the runtime binding receives: the receiver first for a method call.</summary>
        public IReadOnlyList<KernelArg> BoundArgs => OnInput ? new[] { KernelArg.In(0) }.Concat(Args).ToArray() : Args;

        public static KernelCall Static(string target, params KernelArg[] args) => new(target, false, args);

        public static KernelCall Method(string name, params KernelArg[] args) => new(name, true, args);
    }

    public enum GradientKind
    {
        /// <summary>Per-input gradient terms, as data (<see cref="GradientSpec.Terms"/>), applied by Autodiff.</summary>
        Rules,

        /// <summary>A rule written as code in Autodiff (it computes attributes from shapes or splits a stacked result).</summary>
        Custom,

        /// <summary>Not differentiable; <see cref="GradientSpec.Reason"/> says why.</summary>
        None,
    }

    public enum GradArgKind
    {
        /// <summary>The gradient flowing into the op's output.</summary>
        OutputGrad,

        /// <summary>Forward input <see cref="GradArg.Index"/>, saved for the backward.</summary>
        SavedInput,

        /// <summary>The op's forward output, saved for the backward.</summary>
        SavedOutput,
    }

    public sealed class GradArg
    {
        private GradArg(GradArgKind kind, int index)
        {
            Kind = kind;
            Index = index;
        }

        public GradArgKind Kind { get; }

        public int Index { get; }

        public static GradArg G { get; } = new(GradArgKind.OutputGrad, 0);

        public static GradArg Output { get; } = new(GradArgKind.SavedOutput, 0);

        public static GradArg Saved(int input) => new(GradArgKind.SavedInput, input);
    }

    /// <summary>The gradient of one forward input: op(args){attrs}, or the output gradient itself when <see cref="Op"/>
    /// is null; summed down to the input's shape when <see cref="SumTo"/> (undoing a broadcast).</summary>
    public sealed class GradTerm
    {
        private GradTerm(int input, string? op, GradArg[] args, bool copyAttrs, KeyValuePair<string, string>[] attrs, bool sumTo)
        {
            Input = input;
            Op = op;
            Args = args;
            CopyAttrs = copyAttrs;
            Attrs = attrs;
            SumTo = sumTo;
        }

        public int Input { get; }

        public string? Op { get; }

        public IReadOnlyList<GradArg> Args { get; }

        /// <summary>The gradient op takes the forward node's attributes (e.g. layer_norm's eps).</summary>
        public bool CopyAttrs { get; }

        /// <summary>Fixed attributes in canonical text ("transB" → "false").</summary>
        public IReadOnlyList<KeyValuePair<string, string>> Attrs { get; }

        public bool SumTo { get; }

        /// <summary>The output gradient, summed to input <paramref name="input"/>'s shape.</summary>
        public static GradTerm Pass(int input) => new(input, null, new[] { GradArg.G }, false, Array.Empty<KeyValuePair<string, string>>(), true);

        public static GradTerm Of(int input, string op, params GradArg[] args) => new(input, op, args, false, Array.Empty<KeyValuePair<string, string>>(), false);

        public GradTerm WithAttrs() => new(Input, Op, Args.ToArray(), true, Attrs.ToArray(), SumTo);

        public GradTerm With(string key, string value) => new(Input, Op, Args.ToArray(), CopyAttrs, Attrs.Append(new KeyValuePair<string, string>(key, value)).ToArray(), SumTo);

        public GradTerm Summed() => new(Input, Op, Args.ToArray(), CopyAttrs, Attrs.ToArray(), true);
    }

    public sealed class GradientSpec
    {
        private GradientSpec(GradientKind kind, string reason, GradTerm[] terms)
        {
            Kind = kind;
            Reason = reason;
            Terms = terms;
        }

        public GradientKind Kind { get; }

        /// <summary>Why it is custom or not differentiable.</summary>
        public string Reason { get; }

        /// <summary>In input order; an input without a term gets no gradient.</summary>
        public IReadOnlyList<GradTerm> Terms { get; }

        public static GradientSpec Rules(params GradTerm[] terms) => new(GradientKind.Rules, "", terms);

        public static GradientSpec Custom(string why) => new(GradientKind.Custom, why, Array.Empty<GradTerm>());

        public static GradientSpec None(string reason) => new(GradientKind.None, reason, Array.Empty<GradTerm>());
    }

    /// <summary>An ONNX node attribute.</summary>
    public sealed class OnnxAttr
    {
        private OnnxAttr(string name, long? integer, float? number, long[]? integers)
        {
            Name = name;
            Integer = integer;
            Number = number;
            Integers = integers;
        }

        public string Name { get; }

        public long? Integer { get; }

        public float? Number { get; }

        public long[]? Integers { get; }

        public static OnnxAttr Int(string name, long value) => new(name, value, null, null);

        public static OnnxAttr Float(string name, float value) => new(name, null, value, null);

        public static OnnxAttr Ints(string name, params long[] values) => new(name, null, null, values);
    }

    /// <summary>What an ONNX mapping builds with: the node's inputs and attributes, and a sink for ONNX nodes. The
    /// runtime's exporter implements it.</summary>
    public interface IOnnxBuilder
    {
        int InputCount { get; }

        /// <summary>The ai.onnx opset being written (a mapping may pick ops by it).</summary>
        int Opset { get; }

        /// <summary>The ONNX value of input <paramref name="index"/>.</summary>
        string Input(int index);

        /// <summary>Adds an ONNX node; returns its output's name.</summary>
        string Emit(string op, IReadOnlyList<string> inputs, params OnnxAttr[] attributes);

        /// <summary>A rank-0 constant in the node's float type.</summary>
        string Scalar(double value);

        /// <summary>A 1-D int64 constant.</summary>
        string Int64s(params long[] values);

        double Float(string key);

        long Int(string key);
    }

    public enum OnnxKind
    {
        /// <summary>One ONNX op over the same inputs, no attributes.</summary>
        Direct,

        /// <summary>Built here, against <see cref="IOnnxBuilder"/>.</summary>
        Build,

        /// <summary>Written in the runtime's exporter (it reads parameters or writes initializers).</summary>
        Exporter,

        /// <summary>Never in an exported graph; <see cref="OnnxMapping.Reason"/> says why.</summary>
        None,
    }

    public sealed class OnnxMapping
    {
        private OnnxMapping(OnnxKind kind, string text, Func<IOnnxBuilder, string>? build)
        {
            Kind = kind;
            Text = text;
            BuildGraph = build;
        }

        public OnnxKind Kind { get; }

        /// <summary>The ONNX op (Direct), what the exporter writes (Exporter), or why there is none (None).</summary>
        public string Text { get; }

        public string Reason => Text;

        public Func<IOnnxBuilder, string>? BuildGraph { get; }

        public static OnnxMapping Direct(string onnxOp) => new(OnnxKind.Direct, onnxOp, null);

        public static OnnxMapping Build(string what, Func<IOnnxBuilder, string> build) => new(OnnxKind.Build, what, build);

        public static OnnxMapping Exporter(string what) => new(OnnxKind.Exporter, what, null);

        public static OnnxMapping None(string reason) => new(OnnxKind.None, reason, null);
    }

    /// <summary>One op: everything every consumer needs to know about it. The shape rule is the generator's
    /// (<c>ShapeRules</c>, over its IR types); a test holds it and every other binding to this list.</summary>
    public sealed class OpDef
    {
        public OpDef(string name, OpKind kind, string summary)
        {
            Name = name;
            Kind = kind;
            Summary = summary;
        }

        public string Name { get; }

        public OpKind Kind { get; }

        /// <summary>Inputs and result, one line.</summary>
        public string Summary { get; }

        public int MinInputs { get; init; }

        public int MaxInputs { get; init; }

        public IReadOnlyList<AttrSpec> Attrs { get; init; } = Array.Empty<AttrSpec>();

        /// <summary>What a fused or composite op stands for, in IR ops (what the fusion pass matched, or what the
        /// exporter spells out).</summary>
        public string? Decomposition { get; init; }

        public GradientSpec? Gradient { get; init; }

        public KernelCall? Kernel { get; init; }

        public OnnxMapping? Onnx { get; init; }

        /// <summary>May appear in an exported symbol graph (inference and int8 graphs): the interpreter and the ONNX
        /// exporter must handle it.</summary>
        public bool InSymbolGraphs => Kind is OpKind.Primitive or OpKind.Fused or OpKind.Quantized;

        /// <summary>Autodiff may meet it in a training forward and must know its gradient (or why there is none).</summary>
        public bool InTrainingGraphs => Kind is OpKind.Primitive or OpKind.Training;

        /// <summary>Missing bindings this op's kind requires, as messages (empty when complete).</summary>
        public IEnumerable<string> Requires()
        {
            if (Kind == OpKind.Source)
            {
                yield break;
            }

            if (Kernel is null)
            {
                yield return $"{Name} ({Kind}) has no kernel";
            }

            if (InTrainingGraphs && Gradient is null)
            {
                yield return $"{Name} ({Kind}) has no gradient rule and no reason it is not differentiable";
            }

            if (Gradient is { Kind: not GradientKind.Rules } && string.IsNullOrWhiteSpace(Gradient.Reason))
            {
                yield return $"{Name}: a custom or missing gradient needs its reason";
            }

            if (InSymbolGraphs && (Onnx is null || Onnx.Kind == OnnxKind.None))
            {
                yield return $"{Name} ({Kind}) appears in exported graphs but has no ONNX mapping";
            }

            if (Onnx is { Kind: OnnxKind.None } && string.IsNullOrWhiteSpace(Onnx.Reason))
            {
                yield return $"{Name}: no ONNX mapping needs its reason";
            }

            if (MaxInputs < MinInputs)
            {
                yield return $"{Name}: MaxInputs {MaxInputs} < MinInputs {MinInputs}";
            }

            foreach (var key in Kernel?.Args.SelectMany(a => a.Keys()) ?? Enumerable.Empty<string>())
            {
                if (!Attrs.Any(a => a.Key == key))
                {
                    yield return $"{Name}: its kernel reads attribute '{key}', which its schema does not declare";
                }
            }
        }
    }

    /// <summary>A function of a Forward body (a member of <c>GraphCompiler.Ops</c>) and the IR it lowers to.</summary>
    public sealed class DslFunction
    {
        public DslFunction(string name, string lowersTo)
        {
            Name = name;
            LowersTo = lowersTo;
        }

        public string Name { get; }

        public string LowersTo { get; }
    }
}
