using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using GraphCompiler.Generator.Diagnostics;
using GraphCompiler.Generator.Ir;
using GraphCompiler.Generator.Parsing;

namespace GraphCompiler.Generator.Lowering
{
    /// <summary>Model declaration → Graph IR: evaluates the Forward language symbolically, inlines blocks, unrolls
    /// Repeat, expands composite ops (Linear, LayerNorm, Attention) into IR primitives and infers every shape.
    /// The first error stops lowering with a located diagnostic.</summary>
    public sealed class Lowerer
    {
        private const int MaxBlockDepth = 32;

        /// <summary>Bounds unrolling: a huge Repeat count would otherwise hang the IDE and exhaust memory.</summary>
        private const int MaxNodes = 100_000;

        private readonly DeclarationSpec _model;
        private readonly IReadOnlyDictionary<string, DeclarationSpec> _blocks;
        private readonly List<Node> _nodes = new();
        private readonly Dictionary<string, int> _params = new(StringComparer.Ordinal);
        private readonly Stack<string> _applying = new();
        private ElementType _parameterElement = ElementType.F32;

        private readonly IReadOnlyList<BrokenManifest> _broken;

        private Lowerer(DeclarationSpec model, IReadOnlyDictionary<string, DeclarationSpec> blocks, IReadOnlyList<BrokenManifest> broken)
        {
            _model = model;
            _blocks = blocks;
            _broken = broken;
        }

        public static Graph Lower(DeclarationSpec model, IReadOnlyDictionary<string, DeclarationSpec> blocks) =>
            new Lowerer(model, blocks, Array.Empty<BrokenManifest>()).Run();

        /// <param name="broken">Referenced manifests that could not be read: applying one of their blocks is GC0012.</param>
        public static Graph Lower(DeclarationSpec model, IReadOnlyDictionary<string, DeclarationSpec> blocks, IReadOnlyList<BrokenManifest> broken) =>
            new Lowerer(model, blocks, broken).Run();

        private ModelInfo Info => _model.Model!;

        private Graph Run()
        {
            CheckBuckets();
            var forward = _model.Forward!;
            var hypers = new Dictionary<string, Value>(StringComparer.Ordinal);
            foreach (var hyper in _model.Hypers)
            {
                if (hyper.Default is null)
                {
                    throw Error(DiagnosticDescriptors.MissingHyper, hyper.Location, hyper.Name, _model.Name, $"a model's hyper-parameters need defaults, e.g. [Hyper] public {KindName(hyper.Kind)} {hyper.Name} = ...;");
                }

                hypers[hyper.Name] = HyperValue(hyper, hyper.Default.Value);
            }

            var frame = new Frame(_model, hypers, "");
            var types = new List<TensorType>();
            foreach (var input in forward.Inputs)
            {
                var type = InputType(input, hypers);
                types.Add(type);
                frame.Locals[input.Name] = new TensorValue(AddRaw(OpNames.Input, Array.Empty<int>(), type, new[] { Attr.Str("name", input.Name) }, "", input.Location));
            }

            CheckBucketDims(forward, types);

            // Parameters take the model's floating-point type: float64 when its float inputs are (gradient checks).
            _parameterElement = types.Any(t => t.Element == ElementType.F64) ? ElementType.F64 : ElementType.F32;

            var result = Execute(frame, forward.Body, _model.Forward!.Location);
            var outputs = Tensors(result, "the model's Forward", _model.Forward!.Location);
            return new Graph(Info.ModelName, _nodes.ToEquatableArray(), outputs.ToEquatableArray());
        }

        private void CheckBuckets()
        {
            var seen = new HashSet<(int Batch, int Seq)>();
            foreach (var shapes in Info.Shapes)
            {
                if (shapes.Batch <= 0)
                {
                    throw Error(DiagnosticDescriptors.ConstraintViolated, shapes.Location, $"[StaticShapes] Batch must be positive, got {shapes.Batch}");
                }

                if (shapes.SeqLens.Count == 0 || shapes.SeqLens.Any(s => s <= 0))
                {
                    throw Error(DiagnosticDescriptors.ConstraintViolated, shapes.Location, "[StaticShapes] SeqLens must list one or more positive sequence lengths");
                }

                if (shapes.SeqLens.Distinct().Count() != shapes.SeqLens.Count)
                {
                    throw Error(DiagnosticDescriptors.ConstraintViolated, shapes.Location, $"[StaticShapes] SeqLens has duplicates: [{string.Join(", ", shapes.SeqLens)}]");
                }

                // Reported on the later attribute: the first one to declare a bucket owns it.
                var repeated = shapes.SeqLens.Where(s => !seen.Add((shapes.Batch, s))).ToList();
                if (repeated.Count > 0)
                {
                    throw Error(DiagnosticDescriptors.ConstraintViolated, shapes.Location, $"[StaticShapes] bucket {shapes.Batch}×{repeated[0]} is already declared by another [StaticShapes]: drop it from one of them");
                }
            }
        }

        /// <summary>The generated module picks a bucket from its inputs' shapes: some input must carry "batch", and
        /// one must carry "seq" unless there is a single sequence-length bucket.</summary>
        private void CheckBucketDims(ForwardSpec forward, List<TensorType> types)
        {
            if (!types.Any(t => t.Shape.Contains(Dim.Batch)))
            {
                var where = forward.Inputs.Count > 0 ? forward.Inputs[0].Location : forward.Location;
                var name = forward.Inputs.Count > 0 ? forward.Inputs[0].Name : "(none)";
                throw Error(DiagnosticDescriptors.BadInput, where, name, _model.Name, "no input of the model has a \"batch\" dimension, so the batch size of a call cannot be checked: declare one, e.g. [Input(DType.Int64, \"batch\", \"seq\")]");
            }

            var seqCount = Info.Buckets.Select(b => b.Seq).Distinct().Count();
            if (seqCount > 1 && !types.Any(t => t.Shape.Contains(Dim.Seq)))
            {
                throw Error(DiagnosticDescriptors.ConstraintViolated, Info.ShapesLocation, $"[StaticShapes] lists {seqCount} sequence lengths but no input has a \"seq\" dimension to choose between them: give an input a \"seq\" dimension or list a single SeqLens");
            }
        }

        private TensorType InputType(InputSpec input, Dictionary<string, Value> hypers)
        {
            if (input.DType is null)
            {
                throw Error(DiagnosticDescriptors.BadInput, input.Location, input.Name, _model.Name, "declare its dtype and dims with [Input(DType.Int64, \"batch\", \"seq\")]");
            }

            var dims = new List<Dim>();
            foreach (var d in input.Dims)
            {
                if (d == "batch")
                {
                    dims.Add(Dim.Batch);
                }
                else if (d == "seq")
                {
                    dims.Add(Dim.Seq);
                }
                else if (int.TryParse(d, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0)
                {
                    dims.Add(Dim.Of(n));
                }
                else if (hypers.TryGetValue(d, out var h) && h is NumberValue { IsInteger: true } nv && nv.Number > 0)
                {
                    dims.Add(Dim.Of((int)nv.Number));
                }
                else
                {
                    throw Error(DiagnosticDescriptors.BadInput, input.Location, input.Name, _model.Name, $"dimension '{d}' is not \"batch\", \"seq\", a positive integer or an int hyper-parameter of the model");
                }
            }

            if (dims.Count == 0)
            {
                throw Error(DiagnosticDescriptors.BadInput, input.Location, input.Name, _model.Name, "an input needs at least one dimension");
            }

            var element = input.DType switch
            {
                DTypeSpec.Int64 => ElementType.I64,
                DTypeSpec.Float64 => ElementType.F64,
                _ => ElementType.F32,
            };
            return new TensorType(element, dims.ToEquatableArray());
        }

        private sealed class Frame
        {
            public Frame(DeclarationSpec declaration, Dictionary<string, Value> hypers, string prefix)
            {
                Declaration = declaration;
                Hypers = hypers;
                Prefix = prefix;
            }

            public DeclarationSpec Declaration { get; }

            public Dictionary<string, Value> Hypers { get; }

            /// <summary>Parameter-name prefix, ending with '.' unless empty.</summary>
            public string Prefix { get; }

            public Dictionary<string, Value> Locals { get; } = new(StringComparer.Ordinal);

            public string Scope => Prefix.TrimEnd('.');

            public LocationInfo? Statement { get; set; }
        }

        private Value Execute(Frame frame, EquatableArray<StatementSpec> body, LocationInfo? forwardLocation)
        {
            foreach (var statement in body)
            {
                frame.Statement = statement.Location;
                var value = Eval(frame, statement.Value);
                switch (statement.Kind)
                {
                    case StatementKind.Return:
                        return value;
                    case StatementKind.Assign when !frame.Locals.ContainsKey(statement.Target!):
                        throw Error(DiagnosticDescriptors.UndefinedValue, statement.Location, $"'{statement.Target}' is assigned before it is declared");
                    default:
                        frame.Locals[statement.Target!] = value;
                        break;
                }
            }

            throw Error(DiagnosticDescriptors.BadDeclaration, forwardLocation, frame.Declaration.Name, "its Forward has no 'return'");
        }

        private Value Eval(Frame frame, DslExpr expr)
        {
            switch (expr)
            {
                case NumberExpr n:
                    return new NumberValue(n.Value, n.IsInteger);
                case StringExpr s:
                    return new StringValue(s.Value);
                case BoolExpr b:
                    return new BoolValue(b.Value);
                case SymDimExpr d:
                    return new DimValue(Dim.Sym(d.Name));
                case EnumExpr e:
                    return new EnumValue(e.Type, e.Member);
                case RefExpr r:
                    if (frame.Locals.TryGetValue(r.Name, out var local))
                    {
                        return local;
                    }

                    throw Error(DiagnosticDescriptors.UndefinedValue, r.Location, $"'{r.Name}' has no value here");
                case HyperExpr h:
                    if (frame.Hypers.TryGetValue(h.Name, out var hyper))
                    {
                        return hyper;
                    }

                    throw Error(DiagnosticDescriptors.MissingHyper, h.Location, h.Name, frame.Declaration.Name, "it is used here; give it a default or set it where the block is applied");
                case UnaryExpr u:
                    {
                        var operand = Eval(frame, u.Operand);
                        if (operand is NumberValue nv)
                        {
                            return new NumberValue(-nv.Number, nv.IsInteger);
                        }

                        if (operand is TensorValue tv)
                        {
                            return new TensorValue(Add(frame, OpNames.Scale, new[] { tv.Id }, new[] { Attr.Float("factor", -1) }, u.Location));
                        }

                        throw Mistyped(u.Location, "unary '-'", operand);
                    }

                case BinaryExpr b:
                    return Binary(frame, b);
                case ArrayExpr a:
                    return new ListValue(a.Items.Select(i => Eval(frame, i)).ToList(), isTuple: false);
                case TupleExpr t:
                    return new ListValue(t.Items.Select(i => Eval(frame, i)).ToList(), isTuple: true);
                case NewBlockExpr nb:
                    return NewBlock(frame, nb);
                case CallExpr call:
                    return Call(frame, call);
                default:
                    throw Error(DiagnosticDescriptors.NotDsl, expr.Location, expr.GetType().Name, "unsupported expression");
            }
        }

        private Value Binary(Frame frame, BinaryExpr b)
        {
            var left = Eval(frame, b.Left);
            var right = Eval(frame, b.Right);
            if (left is NumberValue l && right is NumberValue r)
            {
                var isInt = l.IsInteger && r.IsInteger;
                switch (b.Operator)
                {
                    case "+": return new NumberValue(l.Number + r.Number, isInt);
                    case "-": return new NumberValue(l.Number - r.Number, isInt);
                    case "*": return new NumberValue(l.Number * r.Number, isInt);
                    case "/" when r.Number == 0:
                        throw Error(DiagnosticDescriptors.ConstraintViolated, b.Location, $"division by zero in '{Describe(b)}'");
                    case "/": return new NumberValue(isInt ? Math.Truncate(l.Number / r.Number) : l.Number / r.Number, isInt);
                    case "%" when r.Number == 0:
                        throw Error(DiagnosticDescriptors.ConstraintViolated, b.Location, $"division by zero in '{Describe(b)}'");
                    case "%": return new NumberValue(l.Number % r.Number, isInt);
                }
            }

            if (left is TensorValue lt && right is TensorValue rt)
            {
                var op = b.Operator switch
                {
                    "+" => OpNames.Add,
                    "-" => OpNames.Sub,
                    "*" => OpNames.Mul,
                    _ => null,
                };
                if (op is not null)
                {
                    return new TensorValue(Add(frame, op, new[] { lt.Id, rt.Id }, Array.Empty<Attr>(), b.Location));
                }
            }

            if (b.Operator is "*" or "/" && (left, right) is (TensorValue, NumberValue) or (NumberValue, TensorValue) && !(b.Operator == "/" && left is NumberValue))
            {
                var tensor = left as TensorValue ?? (TensorValue)right;
                var factor = (left as NumberValue ?? (NumberValue)right).Number;
                if (b.Operator == "/")
                {
                    if (factor == 0)
                    {
                        throw Error(DiagnosticDescriptors.ConstraintViolated, b.Location, "division of a tensor by zero");
                    }

                    factor = 1 / factor;
                }

                return new TensorValue(Add(frame, OpNames.Scale, new[] { tensor.Id }, new[] { Attr.Float("factor", factor) }, b.Location));
            }

            throw Error(DiagnosticDescriptors.UndefinedValue, b.Location, $"'{b.Operator}' is not defined for {left.Kind} and {right.Kind}");
        }

        private static string Describe(BinaryExpr b) => b.Operator;

        private Value NewBlock(Frame frame, NewBlockExpr nb)
        {
            if (!_blocks.TryGetValue(nb.BlockFullName, out var spec))
            {
                var broken = _broken.FirstOrDefault(b => b.FullName == nb.BlockFullName);
                if (broken is not null)
                {
                    throw Error(DiagnosticDescriptors.BadManifest, nb.Location, nb.BlockFullName, broken.Assembly, broken.Problem);
                }

                throw Error(DiagnosticDescriptors.UnknownBlock, nb.Location, nb.BlockFullName, nb.DeclaringAssembly is { } assembly
                    ? $"it is a [Block] of assembly '{assembly}', which was built without the GraphCompiler generator and so carries no manifest of it; build '{assembly}' with the GraphCompiler generator (the GraphCompiler analyzer) and reference it again"
                    : "it is declared in this project but could not be read; fix the errors reported on its declaration");
            }

            var hypers = new Dictionary<string, Value>(StringComparer.Ordinal);
            foreach (var init in nb.Initializers)
            {
                var hyper = spec.Hypers.FirstOrDefault(h => h.Name == init.Name);
                if (hyper is null)
                {
                    throw Error(DiagnosticDescriptors.UnknownHyper, init.Value.Location, init.Name, spec.Name, spec.Hypers.Count == 0 ? "(none)" : string.Join(", ", spec.Hypers.Select(h => h.Name)));
                }

                var value = Eval(frame, init.Value);
                if (value is not NumberValue and not BoolValue)
                {
                    throw Error(DiagnosticDescriptors.UndefinedValue, init.Value.Location, $"hyper-parameter '{init.Name}' needs a number, got a {value.Kind}");
                }

                var number = value is BoolValue bv ? (bv.Flag ? 1 : 0) : ((NumberValue)value).Number;
                if (hyper.Kind == HyperKind.Int && number != Math.Floor(number))
                {
                    throw Error(DiagnosticDescriptors.UndefinedValue, init.Value.Location, $"hyper-parameter '{init.Name}' is an int, got {number.ToString("R", CultureInfo.InvariantCulture)}");
                }

                hypers[init.Name] = HyperValue(hyper, number);
            }

            foreach (var hyper in spec.Hypers)
            {
                if (!hypers.ContainsKey(hyper.Name))
                {
                    if (hyper.Default is null)
                    {
                        throw Error(DiagnosticDescriptors.MissingHyper, nb.Location, hyper.Name, spec.Name, $"set it where the block is applied, e.g. new {spec.Name} {{ {hyper.Name} = ... }}, or give it a default in the block");
                    }

                    hypers[hyper.Name] = HyperValue(hyper, hyper.Default.Value);
                }
            }

            return new BlockValue(spec, hypers, nb.Location);
        }

        private static string KindName(HyperKind kind) => kind switch
        {
            HyperKind.Int => "int",
            HyperKind.Bool => "bool",
            _ => "double",
        };

        private static Value HyperValue(HyperSpec hyper, double value) => hyper.Kind switch
        {
            HyperKind.Bool => new BoolValue(value != 0),
            HyperKind.Int => new NumberValue(value, isInteger: true),
            _ => new NumberValue(value, isInteger: false),
        };

        private Value Call(Frame frame, CallExpr call)
        {
            var args = call.Args.ToDictionary(a => a.Name, a => a, StringComparer.Ordinal);
            Value Arg(string name) => Eval(frame, args[name].Value);
            LocationInfo? Loc(string name) => args[name].Value.Location;
            int TensorArg(string name) => ExpectTensor(Arg(name), name, call.Op, Loc(name));
            int IntArg(string name) => ExpectInt(Arg(name), name, call.Op, Loc(name));
            double NumberArg(string name) => ExpectNumber(Arg(name), name, call.Op, Loc(name));
            string StringArg(string name) => Arg(name) is StringValue s ? s.Text : throw Mistyped(Loc(name), $"{call.Op}({name})", Arg(name));
            var loc = call.Location;
            var none = Array.Empty<Attr>();

            switch (call.Op)
            {
                case DslNames.Param:
                    {
                        var init = Arg("init") is EnumValue { Type: "Init" } e ? e.Member : throw Mistyped(Loc("init"), "Param(init)", Arg("init"));
                        var dims = ExpectList(Arg("dims"), "dims", call.Op, Loc("dims")).Select(d => ExpectInt(d, "dims", call.Op, Loc("dims"))).ToList();
                        if (dims.Count == 0 || dims.Any(d => d <= 0))
                        {
                            throw Error(DiagnosticDescriptors.ShapeMismatch, Loc("dims"), "Param", $"dimensions must be positive, got [{string.Join(", ", dims)}]");
                        }

                        return new TensorValue(Parameter(frame, StringArg("name"), InitName(init), dims.ToArray(), loc));
                    }

                case DslNames.Embedding:
                    {
                        var ids = TensorArg("ids");
                        var table = Parameter(frame, StringArg("name") + ".weight", "normal", new[] { Positive(IntArg("vocab"), "vocab", loc), Positive(IntArg("dim"), "dim", loc) }, loc);
                        return new TensorValue(Add(frame, OpNames.Embedding, new[] { ids, table }, none, loc));
                    }

                case DslNames.PositionEmbedding:
                    {
                        var like = Type(TensorArg("like"));
                        if (like.Rank < 2)
                        {
                            throw Error(DiagnosticDescriptors.ShapeMismatch, Loc("like"), "PositionEmbedding", $"'like' must be [batch, seq, ...], got {like}");
                        }

                        var max = Positive(IntArg("maxPositions"), "maxPositions", loc);
                        var seq = like.Shape[1];
                        var tooLong = seq == Dim.Seq ? Info.Buckets.Select(b => b.Seq).Where(s => s > max).Distinct().ToList() : new List<int>();
                        if (tooLong.Count > 0)
                        {
                            throw Error(DiagnosticDescriptors.ConstraintViolated, Info.ShapesLocation ?? loc, $"sequence-length bucket {tooLong[0]} exceeds the {max} positions of '{frame.Prefix}{StringArg("name")}': drop it from [StaticShapes] SeqLens or raise maxPositions");
                        }

                        var table = Parameter(frame, StringArg("name") + ".weight", "normal", new[] { max, Positive(IntArg("dim"), "dim", loc) }, loc);
                        return new TensorValue(Add(frame, OpNames.Rows, new[] { table }, new[] { Attr.Dims("count", new[] { seq }) }, loc));
                    }

                case DslNames.Linear:
                    {
                        var x = TensorArg("x");
                        var inFeatures = Positive(IntArg("inFeatures"), "inFeatures", loc);
                        var outFeatures = Positive(IntArg("outFeatures"), "outFeatures", loc);
                        var name = StringArg("name");
                        var last = Type(x).Last;
                        if (last != Dim.Of(inFeatures))
                        {
                            throw Error(DiagnosticDescriptors.ShapeMismatch, loc, $"Linear '{frame.Prefix}{name}'", $"declares {inFeatures} in-features but its input {Type(x)} has last dimension {last}; make inFeatures {last}");
                        }

                        var weight = Parameter(frame, name + ".weight", "normal", new[] { outFeatures, inFeatures }, loc);
                        var y = Add(frame, OpNames.MatMul, new[] { x, weight }, new[] { Attr.Bool("transB", true) }, loc, name);
                        if (Arg("bias") is BoolValue { Flag: true })
                        {
                            var bias = Parameter(frame, name + ".bias", "zeros", new[] { outFeatures }, loc);
                            y = Add(frame, OpNames.Add, new[] { y, bias }, none, loc, name);
                        }

                        return new TensorValue(y);
                    }

                case DslNames.MatMul:
                    return new TensorValue(Add(frame, OpNames.MatMul, new[] { TensorArg("a"), TensorArg("b") }, new[] { Attr.Bool("transB", false) }, loc));
                case DslNames.Add:
                    return new TensorValue(Add(frame, OpNames.Add, new[] { TensorArg("a"), TensorArg("b") }, none, loc));
                case DslNames.Mul:
                    return new TensorValue(Add(frame, OpNames.Mul, new[] { TensorArg("a"), TensorArg("b") }, none, loc));
                case DslNames.Scale:
                    return new TensorValue(Add(frame, OpNames.Scale, new[] { TensorArg("x") }, new[] { Attr.Float("factor", NumberArg("factor")) }, loc));
                case DslNames.Reshape:
                    {
                        var dims = ExpectList(Arg("dims"), "dims", call.Op, Loc("dims")).Select(d => d switch
                        {
                            DimValue dv => dv.Dim,
                            NumberValue { IsInteger: true } nv => Dim.Of(ExpectInt(nv, "dims", call.Op, Loc("dims"))),
                            _ => throw Mistyped(Loc("dims"), "Reshape(dims)", d),
                        }).ToList();
                        return new TensorValue(Add(frame, OpNames.Reshape, new[] { TensorArg("x") }, new[] { Attr.Dims("shape", dims) }, loc));
                    }

                case DslNames.Transpose:
                    return new TensorValue(Add(frame, OpNames.Transpose, new[] { TensorArg("x") }, new[] { Attr.Int("dim0", IntArg("dim0")), Attr.Int("dim1", IntArg("dim1")) }, loc));
                case DslNames.Permute:
                    {
                        var order = ExpectList(Arg("order"), "order", call.Op, Loc("order")).Select(o => (long)ExpectInt(o, "order", call.Op, Loc("order"))).ToList();
                        return new TensorValue(Add(frame, OpNames.Permute, new[] { TensorArg("x") }, new[] { Attr.Ints("order", order) }, loc));
                    }

                case DslNames.Softmax:
                    return args.ContainsKey("mask")
                        ? new TensorValue(Add(frame, OpNames.MaskedSoftmax, new[] { TensorArg("x"), TensorArg("mask") }, none, loc))
                        : new TensorValue(Add(frame, OpNames.Softmax, new[] { TensorArg("x") }, none, loc));
                case DslNames.LayerNorm:
                    {
                        var x = TensorArg("x");
                        var dim = Positive(IntArg("dim"), "dim", loc);
                        var name = StringArg("name");
                        if (Type(x).Last != Dim.Of(dim))
                        {
                            throw Error(DiagnosticDescriptors.ShapeMismatch, loc, $"LayerNorm '{frame.Prefix}{name}'", $"normalizes {dim} features but its input {Type(x)} has last dimension {Type(x).Last}");
                        }

                        var eps = NumberArg("eps");
                        if (!(eps > 0))
                        {
                            throw Error(DiagnosticDescriptors.ConstraintViolated, Loc("eps"), $"LayerNorm '{frame.Prefix}{name}' needs eps > 0");
                        }

                        var weight = Parameter(frame, name + ".weight", "ones", new[] { dim }, loc);
                        var bias = Parameter(frame, name + ".bias", "zeros", new[] { dim }, loc);
                        return new TensorValue(Add(frame, OpNames.LayerNorm, new[] { x, weight, bias }, new[] { Attr.Float("eps", eps) }, loc, name));
                    }

                case DslNames.RmsNorm:
                    {
                        var x = TensorArg("x");
                        var dim = Positive(IntArg("dim"), "dim", loc);
                        var name = StringArg("name");
                        if (Type(x).Last != Dim.Of(dim))
                        {
                            throw Error(DiagnosticDescriptors.ShapeMismatch, loc, $"RmsNorm '{frame.Prefix}{name}'", $"normalizes {dim} features but its input {Type(x)} has last dimension {Type(x).Last}");
                        }

                        var eps = NumberArg("eps");
                        if (!(eps > 0))
                        {
                            throw Error(DiagnosticDescriptors.ConstraintViolated, Loc("eps"), $"RmsNorm '{frame.Prefix}{name}' needs eps > 0");
                        }

                        var weight = Parameter(frame, name + ".weight", "ones", new[] { dim }, loc);
                        return new TensorValue(Add(frame, OpNames.RmsNorm, new[] { x, weight }, new[] { Attr.Float("eps", eps) }, loc, name));
                    }

                case DslNames.Silu:
                    return new TensorValue(Add(frame, OpNames.Silu, new[] { TensorArg("x") }, none, loc));
                case DslNames.Gelu:
                    return new TensorValue(Add(frame, OpNames.Gelu, new[] { TensorArg("x") }, none, loc));
                case DslNames.Tanh:
                    return new TensorValue(Add(frame, OpNames.Tanh, new[] { TensorArg("x") }, none, loc));
                case DslNames.Dropout:
                    return new TensorValue(Dropout(frame, TensorArg("x"), NumberArg("p"), Loc("p")));
                case DslNames.Select:
                    return new TensorValue(Add(frame, OpNames.Select, new[] { TensorArg("x") }, new[] { Attr.Int("dim", IntArg("dim")), Attr.Int("index", IntArg("index")) }, loc));
                case DslNames.Slice:
                    return new TensorValue(Add(frame, OpNames.Slice, new[] { TensorArg("x") }, new[] { Attr.Int("dim", IntArg("dim")), Attr.Int("start", IntArg("start")), Attr.Int("end", IntArg("end")) }, loc));
                case DslNames.Concat:
                    {
                        var parts = ExpectList(Arg("parts"), "parts", call.Op, Loc("parts")).Select(p => ExpectTensor(p, "parts", call.Op, Loc("parts"))).ToArray();
                        if (parts.Length < 2)
                        {
                            throw Error(DiagnosticDescriptors.ShapeMismatch, loc, "Concat", "needs at least two tensors");
                        }

                        return new TensorValue(Add(frame, OpNames.Concat, parts, new[] { Attr.Int("dim", IntArg("dim")) }, loc));
                    }

                case DslNames.LengthMask:
                    {
                        var like = TensorArg("like");
                        var dtype = Type(like).Element == ElementType.F64 ? "f64" : "f32";
                        return new TensorValue(Add(frame, OpNames.LengthMask, new[] { TensorArg("validLength"), like }, new[] { Attr.Str("dtype", dtype) }, loc));
                    }

                case DslNames.Attention:
                    return new TensorValue(Attention(frame, TensorArg("q"), TensorArg("k"), TensorArg("v"), TensorArg("mask"), IntArg("heads"), NumberArg("dropout"), loc));
                case DslNames.Apply:
                    {
                        var block = Arg("block") as BlockValue ?? throw Mistyped(Loc("block"), "Apply(block)", Arg("block"));
                        var inputs = ExpectList(Arg("inputs"), "inputs", call.Op, Loc("inputs")).ToList();
                        return Inline(block, frame.Prefix + Prefix(StringArg("prefix")), inputs, loc);
                    }

                case DslNames.Repeat:
                    {
                        var count = IntArg("count");
                        if (count < 1)
                        {
                            throw Error(DiagnosticDescriptors.ConstraintViolated, Loc("count"), $"Repeat needs a count ≥ 1, got {count}");
                        }

                        if (count > MaxNodes)
                        {
                            throw Error(DiagnosticDescriptors.ConstraintViolated, Loc("count"), $"Repeat count {count} unrolls to more than {MaxNodes} graph nodes; use a count of at most a few thousand");
                        }

                        var block = Arg("block") as BlockValue ?? throw Mistyped(Loc("block"), "Repeat(block)", Arg("block"));
                        var shared = ExpectList(Arg("shared"), "shared", call.Op, Loc("shared"));
                        var x = Arg("x");
                        ExpectTensor(x, "x", call.Op, Loc("x"));
                        var prefix = frame.Prefix + Prefix(StringArg("prefix"));
                        for (var i = 0; i < count; i++)
                        {
                            var inputs = new List<Value> { x };
                            inputs.AddRange(shared);
                            x = Inline(block, prefix + i.ToString(CultureInfo.InvariantCulture) + ".", inputs, loc);
                            ExpectTensor(x, "result", $"Repeat of '{block.Spec.Name}'", loc);
                        }

                        return x;
                    }

                default:
                    throw Error(DiagnosticDescriptors.UnknownOp, loc, call.Op, string.Join(", ", OpCatalog.Names));
            }
        }

        private static string Prefix(string prefix) => prefix.Length == 0 || prefix.EndsWith(".", StringComparison.Ordinal) ? prefix : prefix + ".";

        private int Positive(int value, string what, LocationInfo? loc) =>
            value > 0 ? value : throw Error(DiagnosticDescriptors.ConstraintViolated, loc, $"'{what}' must be positive, got {value}");

        private static string InitName(string member) => member switch
        {
            "Zeros" => "zeros",
            "Ones" => "ones",
            "KaimingUniform" => "kaiming_uniform",
            _ => "normal",
        };

        private int Dropout(Frame frame, int x, double p, LocationInfo? loc)
        {
            if (p < 0 || p >= 1)
            {
                throw Error(DiagnosticDescriptors.ConstraintViolated, loc, $"dropout probability must be in [0, 1), got {p.ToString("R", CultureInfo.InvariantCulture)}");
            }

            return p == 0 ? x : Add(frame, OpNames.Dropout, new[] { x }, new[] { Attr.Float("p", p) }, loc);
        }

        /// <summary>Multi-head attention as IR primitives; the fuse_attention pass turns the core into one SDPA.</summary>
        private int Attention(Frame frame, int q, int k, int v, int mask, int heads, double dropout, LocationInfo? loc)
        {
            var qt = Type(q);
            if (qt.Rank != 3)
            {
                throw Error(DiagnosticDescriptors.ShapeMismatch, loc, "Attention", $"query must be [batch, seq, hidden], got {qt}");
            }

            var hidden = qt.Last;
            if (heads <= 0 || !hidden.IsConstant || hidden.Size % heads != 0)
            {
                throw Error(DiagnosticDescriptors.ConstraintViolated, loc, $"Attention in '{frame.Scope}': hidden size {hidden} is not divisible by {heads} heads; choose Heads dividing Hidden");
            }

            foreach (var (other, name) in new[] { (k, "key"), (v, "value") })
            {
                if (!Type(other).Shape.SequenceEqual(qt.Shape))
                {
                    throw Error(DiagnosticDescriptors.ShapeMismatch, loc, "Attention", $"{name} {Type(other)} differs from query {qt}");
                }
            }

            var headDim = hidden.Size / heads;
            var split = new[] { qt.Shape[0], qt.Shape[1], Dim.Of(heads), Dim.Of(headDim) };
            int Heads(int t) => Add(frame, OpNames.Permute, new[] { Add(frame, OpNames.Reshape, new[] { t }, new[] { Attr.Dims("shape", split) }, loc) }, new[] { Attr.Ints("order", new long[] { 0, 2, 1, 3 }) }, loc);
            var qh = Heads(q);
            var kh = Heads(k);
            var vh = Heads(v);
            var scores = Add(frame, OpNames.MatMul, new[] { qh, kh }, new[] { Attr.Bool("transB", true) }, loc);
            var scaled = Add(frame, OpNames.Scale, new[] { scores }, new[] { Attr.Float("factor", 1 / Math.Sqrt(headDim)) }, loc);
            var probs = Add(frame, OpNames.MaskedSoftmax, new[] { scaled, mask }, Array.Empty<Attr>(), loc);
            probs = Dropout(frame, probs, dropout, loc);
            var context = Add(frame, OpNames.MatMul, new[] { probs, vh }, new[] { Attr.Bool("transB", false) }, loc);
            var merged = Add(frame, OpNames.Permute, new[] { context }, new[] { Attr.Ints("order", new long[] { 0, 2, 1, 3 }) }, loc);
            return Add(frame, OpNames.Reshape, new[] { merged }, new[] { Attr.Dims("shape", qt.Shape) }, loc);
        }

        private Value Inline(BlockValue block, string prefix, IReadOnlyList<Value> inputs, LocationInfo? loc)
        {
            var spec = block.Spec;
            if (spec.Forward is null)
            {
                throw Error(DiagnosticDescriptors.BadDeclaration, loc, spec.Name, "the block has no usable [Forward]");
            }

            if (_applying.Contains(spec.FullName) || _applying.Count >= MaxBlockDepth)
            {
                throw Error(DiagnosticDescriptors.BadDeclaration, loc, spec.Name, "blocks apply each other in a cycle (or nest deeper than 32)");
            }

            if (inputs.Count != spec.Forward.Inputs.Count)
            {
                throw Error(DiagnosticDescriptors.UndefinedValue, loc, $"block '{spec.Name}' takes {spec.Forward.Inputs.Count} inputs ({string.Join(", ", spec.Forward.Inputs.Select(i => i.Name))}) but is given {inputs.Count}");
            }

            var frame = new Frame(spec, new Dictionary<string, Value>(block.Hypers.ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal), prefix);
            for (var i = 0; i < inputs.Count; i++)
            {
                frame.Locals[spec.Forward.Inputs[i].Name] = inputs[i];
            }

            var appliedByModel = _applying.Count == 0;
            _applying.Push(spec.FullName);
            try
            {
                return Execute(frame, spec.Forward.Body, spec.Forward.Location);
            }
            catch (CompileErrorException ex) when (appliedByModel && !ReferenceEquals(ex.Diagnostic.Location, loc))
            {
                throw new CompileErrorException(FromApplication(ex.Diagnostic, spec, block, loc));
            }
            finally
            {
                _applying.Pop();
            }
        }

        /// <summary>An error inside a block the model applies, seen from the model: the message names the model and the
        /// line that applied the block (where the offending hyper-parameter values were written). A block from another
        /// assembly has no source here, so the diagnostic moves to that line; a local block keeps it and adds the line
        /// as an additional location.</summary>
        private DiagnosticInfo FromApplication(DiagnosticInfo diagnostic, DeclarationSpec spec, BlockValue block, LocationInfo? applyLocation)
        {
            var userLine = block.Location ?? applyLocation;
            if (userLine is null || userLine.IsExternal)
            {
                return diagnostic; // the model's own Forward is another assembly's; ModelCompiler moves it to the model
            }

            var inside = diagnostic.Location is { } at ? $", at {at.ShortText}" + (at.IsExternal ? $" of assembly '{at.Assembly}'" : "") : "";
            var context = $" (in block '{spec.Name}'{inside}, as model '{Info.ModelName}' applies it at {userLine.ShortText})";
            return diagnostic.Location is null || diagnostic.Location.IsExternal
                ? diagnostic.WithContext(context, userLine, null)
                : diagnostic.WithContext(context, diagnostic.Location, userLine);
        }

        private int Parameter(Frame frame, string name, string init, int[] dims, LocationInfo? loc)
        {
            var fullName = frame.Prefix + name;
            if (name.Length == 0 || fullName.Contains("..") || fullName.StartsWith(".", StringComparison.Ordinal) || fullName.EndsWith(".", StringComparison.Ordinal))
            {
                throw Error(DiagnosticDescriptors.BadDeclaration, loc, frame.Declaration.Name, $"parameter name '{fullName}' is empty or has an empty segment");
            }

            if (_params.ContainsKey(fullName))
            {
                throw Error(DiagnosticDescriptors.DuplicateParameter, loc, fullName, Info.ModelName);
            }

            var type = new TensorType(_parameterElement, dims.Select(Dim.Of).ToEquatableArray());
            var id = AddRaw(OpNames.Param, Array.Empty<int>(), type, new[] { Attr.Str("init", init), Attr.Str("name", fullName) }, frame.Scope, loc);
            _params[fullName] = id;
            return id;
        }

        private TensorType Type(int id) => _nodes[id].Type;

        private void CheckBudget(LocationInfo? loc)
        {
            if (_nodes.Count >= MaxNodes)
            {
                throw Error(DiagnosticDescriptors.ConstraintViolated, loc, $"the model unrolls to more than {MaxNodes} graph nodes; lower the Repeat counts");
            }
        }

        /// <summary>Adds a node, inferring its type; a rule violation becomes GC0003/GC0006 at <paramref name="loc"/>.</summary>
        private int Add(Frame frame, string op, int[] inputs, Attr[] attrs, LocationInfo? loc, string? scopeSuffix = null)
        {
            var scope = scopeSuffix is null ? frame.Scope : frame.Prefix + scopeSuffix;
            var probe = new Node(_nodes.Count, op, inputs.ToEquatableArray(), TensorType.Of(ElementType.F32), attrs.OrderBy(a => a.Key, StringComparer.Ordinal).ToEquatableArray(), scope, loc?.ShortText ?? "");
            CheckBudget(loc);
            TensorType type;
            try
            {
                type = ShapeRules.Infer(probe, inputs.Select(Type).ToList());
            }
            catch (ShapeException ex)
            {
                var where = scope.Length > 0 ? $"{op} in '{scope}'" : op;
                throw ex.IsConstraint
                    ? Error(DiagnosticDescriptors.ConstraintViolated, loc, $"{where}: {ex.Message}")
                    : Error(DiagnosticDescriptors.ShapeMismatch, loc, where, ex.Message);
            }

            _nodes.Add(probe with { Type = type });
            return probe.Id;
        }

        private int AddRaw(string op, int[] inputs, TensorType type, Attr[] attrs, string scope, LocationInfo? loc)
        {
            CheckBudget(loc);
            var node = new Node(_nodes.Count, op, inputs.ToEquatableArray(), type, attrs.OrderBy(a => a.Key, StringComparer.Ordinal).ToEquatableArray(), scope, loc?.ShortText ?? "");
            _nodes.Add(node);
            return node.Id;
        }

        private List<int> Tensors(Value value, string what, LocationInfo? loc) => value switch
        {
            TensorValue t => new List<int> { t.Id },
            ListValue { IsTuple: true } tuple => tuple.Items.Select(i => ExpectTensor(i, "result", what, loc)).ToList(),
            _ => throw Mistyped(loc, what + " result", value),
        };

        private int ExpectTensor(Value value, string arg, string op, LocationInfo? loc) =>
            value is TensorValue t ? t.Id : throw Mistyped(loc, $"{op}({arg})", value);

        private int ExpectInt(Value value, string arg, string op, LocationInfo? loc) => value switch
        {
            NumberValue { IsInteger: true, Number: >= int.MinValue and <= int.MaxValue } n => (int)n.Number,
            NumberValue { IsInteger: true } n => throw Error(DiagnosticDescriptors.ConstraintViolated, loc, $"{op}({arg}) is {n.Number.ToString("R", CultureInfo.InvariantCulture)}, which overflows an int; use a smaller value"),
            _ => throw Mistyped(loc, $"{op}({arg}) needs an int;", value),
        };

        private double ExpectNumber(Value value, string arg, string op, LocationInfo? loc) =>
            value is NumberValue n ? n.Number : throw Mistyped(loc, $"{op}({arg}) needs a number;", value);

        private IReadOnlyList<Value> ExpectList(Value value, string arg, string op, LocationInfo? loc) =>
            value is ListValue l ? l.Items : throw Mistyped(loc, $"{op}({arg})", value);

        private static CompileErrorException Mistyped(LocationInfo? loc, string where, Value got) =>
            Error(DiagnosticDescriptors.UndefinedValue, loc, $"{where} got a {got.Kind}");

        private static CompileErrorException Error(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, LocationInfo? loc, params string[] args) =>
            new(DiagnosticInfo.Create(descriptor, loc, args));
    }
}
