using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using GraphCompiler.Generator.Ir;
using GraphCompiler.Generator.Parsing;
using Scriban;
using Scriban.Runtime;
using GraphCompiler.Generator.Passes;

namespace GraphCompiler.Generator.Emit
{
    /// <summary>The graphs of a [Quantize] model's two extra variants, both derived from the optimized graph.</summary>
    public sealed record QuantizedGraphs(Graph Calibration, Graph Int8, IReadOnlyList<QuantizedGemm> Gemms);

    /// <summary>Renders a compiled graph as a TorchSharp module: one forward per static shape bucket, shapes as
    /// constants, each value freed after its last use. Every literal is decided here; the template only places strings.</summary>
    public static class ModelEmitter
    {
        public const string Version = "1.0.0";

        private static readonly Lazy<Template> ModuleTemplate = new(() => Load("Module"));

        private static readonly Lazy<Template> Int8Template = new(() => Load("Int8Module"));

        public static string Emit(DeclarationSpec model, Graph lowered, Graph optimized, Graph training, BackwardGraph backward, QuantizedGraphs? quantized = null)
        {
            var info = model.Model!;
            var className = model.Name + "Module";
            var inputs = optimized.Inputs.ToList();
            var inputNames = inputs.ToDictionary(n => n.Id, n => SafeIdentifier(n.Attr("name")!));
            var parameters = optimized.Parameters.ToList();
            var fieldNames = parameters.ToDictionary(p => p.Id, p => "p" + p.Id.ToString(CultureInfo.InvariantCulture));
            string NameOf(int id) => inputNames.TryGetValue(id, out var i) ? i : fieldNames.TryGetValue(id, out var f) ? f : "x" + id.ToString(CultureInfo.InvariantCulture);

            var batchInput = inputs.First(i => i.Type.Shape.Contains(Dim.Batch));
            var seqInput = inputs.FirstOrDefault(i => i.Type.Shape.Contains(Dim.Seq));
            var outputs = optimized.Outputs.ToList();
            var returnType = outputs.Count == 1 ? "Tensor" : "(" + string.Join(", ", outputs.Select(_ => "Tensor")) + ")";

            // The training function's args: the inputs, then every parameter (matched to the module's by name).
            var paramIdByName = parameters.ToDictionary(p => p.Attr("name")!, p => p.Id, StringComparer.Ordinal);
            var trainingInputs = training.Inputs.ToList();
            var trainingParams = training.Parameters.ToList();
            if (trainingParams.Count != parameters.Count || trainingParams.Any(p => !paramIdByName.ContainsKey(p.Attr("name")!)))
            {
                throw new InvalidOperationException("the training graph's parameters differ from the inference graph's");
            }

            var argIds = trainingInputs.Select(n => n.Id).Concat(trainingParams.Select(n => n.Id)).ToList();
            var trainingNames = trainingInputs.ToDictionary(n => n.Id, n => SafeIdentifier(n.Attr("name")!));
            foreach (var p in trainingParams)
            {
                trainingNames[p.Id] = fieldNames[paramIdByName[p.Attr("name")!]];
            }

            string TrainingName(int id) => trainingNames.TryGetValue(id, out var n) ? n : "x" + id.ToString(CultureInfo.InvariantCulture);
            var moduleArgs = string.Join(", ", trainingInputs.Select(n => inputNames[optimized.Inputs.First(i => i.Attr("name") == n.Attr("name")).Id])
                .Concat(trainingParams.Select(p => fieldNames[paramIdByName[p.Attr("name")!]])));
            var outputCount = training.Outputs.Count;
            var unpack = outputCount == 1 ? "outputs[0]" : "(" + string.Join(", ", Enumerable.Range(0, outputCount).Select(i => $"outputs[{i}]")) + ")";

            var shapeBuckets = info.Buckets.ToList();
            var sizeArgs = SizeArgs(shapeBuckets, seqInput is not null);
            var checks = inputs.Select(i => Check(i, inputNames[i.Id])).ToList();
            var outlined = new List<string>();
            var methodNames = new HashSet<string>(StringComparer.Ordinal);
            var inferenceLines = BucketBody(optimized, NameOf, new Outlining("", isStatic: false, outlined, methodNames));
            var trainingLines = TrainingForwardBody(training, backward, argIds, TrainingName, new Outlining("Training", isStatic: true, outlined, methodNames));
            var backwardLines = BackwardBody(backward, argIds, new Outlining("Backward", isStatic: true, outlined, methodNames));

            var data = new Dictionary<string, object>
            {
                ["Declaration"] = model.Name,
                ["FileName"] = model.FileName,
                ["ModelName"] = Escape(info.ModelName),
                ["Passes"] = Passes.PassPipeline.Names(),
                ["Namespace"] = model.Namespace,
                ["ClassName"] = className,
                ["Version"] = Version,
                ["ParameterCount"] = parameters.Count.ToString(CultureInfo.InvariantCulture),
                ["ParameterElements"] = parameters.Sum(p => p.Type.Shape.Aggregate(1L, (a, d) => a * d.Size)).ToString("N0", CultureInfo.InvariantCulture),
                ["BucketList"] = string.Join(", ", shapeBuckets.Select(b => $"{b.Batch}×{b.Seq}")),
                ["BucketInits"] = string.Join(", ", shapeBuckets.Select(b => $"new({b.Batch}, {b.Seq})")),
                ["BucketPattern"] = string.Join(" or ", shapeBuckets.Select(b => seqInput is null ? $"({b.Batch}, _)" : $"({b.Batch}, {b.Seq})")),
                ["SizeArgs"] = sizeArgs,
                ["Checks"] = checks,
                ["Lines"] = inferenceLines,
                ["Outlined"] = outlined,
                ["ModuleArgs"] = moduleArgs,
                ["Unpack"] = unpack,
                ["TrainingLines"] = trainingLines,
                ["BackwardLines"] = backwardLines,
                ["Packs"] = parameters.Where(p => p.Attr("packs") is not null).Select(Pack).ToList(),
                ["Parameters"] = parameters.Select(p => new Dictionary<string, object>
                {
                    ["Field"] = fieldNames[p.Id],
                    ["Name"] = Escape(p.Attr("name")!),
                    ["Init"] = "ParameterInit." + InitMember(p.Attr("init")),
                    ["DType"] = p.Type.Element == ElementType.F64 ? "ScalarType.Float64" : "ScalarType.Float32",
                    ["Dims"] = string.Join(", ", p.Type.Shape.Select(d => d.Size.ToString(CultureInfo.InvariantCulture))),
                    ["Comment"] = $"{p.Attr("name")} {p.Type}",
                }).ToList(),
                ["ModuleTypeArgs"] = string.Join(", ", inputs.Select(_ => "Tensor").Append(returnType)),
                ["ReturnType"] = returnType,
                ["InputParams"] = string.Join(", ", inputs.Select(i => "Tensor " + inputNames[i.Id])),
                ["InputArgs"] = string.Join(", ", inputs.Select(i => inputNames[i.Id])),
                ["BatchExpr"] = $"{inputNames[batchInput.Id]}.shape.Length > {batchInput.Type.Shape.Items.IndexOf(Dim.Batch)} ? {inputNames[batchInput.Id]}.shape[{batchInput.Type.Shape.Items.IndexOf(Dim.Batch)}] : -1",
                ["SeqExpr"] = seqInput is null ? "0L" : $"{inputNames[seqInput.Id]}.shape.Length > {seqInput.Type.Shape.Items.IndexOf(Dim.Seq)} ? {inputNames[seqInput.Id]}.shape[{seqInput.Type.Shape.Items.IndexOf(Dim.Seq)}] : -1",
                ["LoweredIr"] = Packed(IrText.Print(lowered)),
                ["TrainingIr"] = Packed(IrText.Print(training)),
                ["BackwardIr"] = Packed(IrText.Print(backward.Graph)),
                ["OptimizedIr"] = Packed(IrText.Print(optimized)),
                ["SymbolJson"] = RawString(SymbolWriter.Write(optimized, info.ModelName, Precision(parameters), shapeBuckets, HeadNames(model, outputs.Count))),
            };

            AddQuantization(data, quantized, model, inputNames, fieldNames, NameOf);
            data["Int8SymbolJson"] = quantized is null
                ? "\"\""
                : RawString(SymbolWriter.Write(quantized.Int8, info.ModelName, "int8", shapeBuckets, HeadNames(model, outputs.Count)));
            var source = Render(ModuleTemplate.Value, data);
            return quantized is null ? source : source + "\n" + Render(Int8Template.Value, data);
        }

        /// <summary>The [Quantize] parts: ForwardObserved and QuantizationSlots on the fp32 module (blocks of Module.scriban),
        /// and the data of the {Decl}Int8Module class (Int8Module.scriban). Keys are set for every model, since the
        /// template's variables are strict.</summary>
        private static void AddQuantization(Dictionary<string, object> data, QuantizedGraphs? quantized, DeclarationSpec model,
            IReadOnlyDictionary<int, string> inputNames, IReadOnlyDictionary<int, string> fieldNames, Func<int, string> name)
        {
            data["Quantized"] = quantized is not null;
            data["CalibrationIrExpr"] = quantized is null ? "\"\"u8" : "CalibrationIr";
            data["Int8IrExpr"] = quantized is null ? "\"\"u8" : "Int8Ir";
            data["Int8ClassName"] = model.Name + "Int8Module";
            data["Slots"] = new List<string>();
            data["ObservedLines"] = new List<string>();
            data["ObservedOutlined"] = new List<string>();
            data["Int8Lines"] = new List<string>();
            data["Int8Outlined"] = new List<string>();
            data["FloatParameters"] = new List<Dictionary<string, object>>();
            data["Buffers"] = new List<Dictionary<string, object>>();
            data["Conversion"] = new List<string>();
            data["ScaleFills"] = new List<string>();
            data["CalibrationIr"] = "";
            data["Int8Ir"] = "";
            data["Int8Passes"] = "";
            if (quantized is null)
            {
                return;
            }

            var (calibration, int8, gemms) = (quantized.Calibration, quantized.Int8, quantized.Gemms);
            data["Slots"] = gemms.Select(g => $"new(\"{Escape(g.Slot)}\", \"{g.Kind}\", \"{Escape(g.WeightName)}\", {g.InFeatures}, {g.OutFeatures})").ToList();
            data["CalibrationIr"] = Packed(IrText.Print(calibration));
            data["Int8Ir"] = Packed(IrText.Print(int8));
            data["Int8Passes"] = PassPipeline.Names(PassPipeline.Int8);
            // Calibration's methods share the fp32 module's class; dropout stays off in them as in the body.
            var observedOutlined = new List<string>();
            data["ObservedLines"] = BucketBody(calibration, name, new Outlining("Observed", isStatic: false, observedOutlined, new HashSet<string>(StringComparer.Ordinal),
                context: "IActivationObserver observer", preamble: "const bool training = false; // calibration observes the inference graph: dropout is the identity"));
            data["ObservedOutlined"] = observedOutlined;

            // The int8 graph keeps every fp32 parameter's id (GEMM weights and tables turn i8 in place) and adds the scales.
            string Int8Name(int id) => inputNames.TryGetValue(id, out var i) ? i : "x" + id.ToString(CultureInfo.InvariantCulture);
            string Field(int id) => "p" + id.ToString(CultureInfo.InvariantCulture);
            var int8Params = new HashSet<int>(int8.Parameters.Select(p => p.Id));
            string Int8NameOf(int id) => int8Params.Contains(id) ? Field(id) : Int8Name(id);
            var int8Outlined = new List<string>();
            data["Int8Lines"] = BucketBody(int8, Int8NameOf, new Outlining("", isStatic: false, int8Outlined, new HashSet<string>(StringComparer.Ordinal)));
            data["Int8Outlined"] = int8Outlined;

            var gemmByWeight = gemms.ToDictionary(g => g.WeightId);
            var scaleIds = new HashSet<int>();
            var conversion = new List<string>();
            var scaleFills = new List<string>();
            foreach (var node in int8.Nodes.Where(n => OpNames.IsQuantizedGemm(n.Op)))
            {
                var (weight, weightScale, inputScale) = (int8[node.Inputs[1]], node.Inputs[2], node.Inputs[3]);
                var gemm = gemmByWeight[weight.Id];
                scaleIds.Add(weightScale);
                scaleIds.Add(inputScale);
                conversion.Add($"Int8Conversion.CopyQuantized(Int8Conversion.Find(Name, weights, \"{Escape(gemm.WeightName)}\", {gemm.OutFeatures}, {gemm.InFeatures}), target.{Field(weight.Id)}, target.{Field(weightScale)});");
                scaleFills.Add($"target.{Field(inputScale)}.fill_(inputScales[\"{Escape(gemm.Slot)}\"]);");
            }

            // Embedding tables: quantized per row (a row is an output channel of the lookup).
            foreach (var node in int8.Nodes.Where(n => n.Op == OpNames.QEmbedding))
            {
                var (table, tableScale) = (int8[node.Inputs[1]], node.Inputs[2]);
                scaleIds.Add(tableScale);
                conversion.Add($"Int8Conversion.CopyQuantized(Int8Conversion.Find(Name, weights, \"{Escape(table.Attr("name")!)}\", {table.Type.Shape[0].Size}, {table.Type.Shape[1].Size}), target.{Field(table.Id)}, target.{Field(tableScale)});");
            }

            var copies = new List<string>();
            var floatParameters = new List<Dictionary<string, object>>();
            var buffers = new List<Dictionary<string, object>>();
            foreach (var p in int8.Parameters)
            {
                var dims = string.Join(", ", p.Type.Shape.Select(d => d.Size.ToString(CultureInfo.InvariantCulture)));
                var entry = new Dictionary<string, object>
                {
                    ["Field"] = Field(p.Id),
                    ["Name"] = Escape(p.Attr("name")!),
                    ["Init"] = "ParameterInit." + InitMember(p.Attr("init")),
                    ["DType"] = p.Type.Element switch { ElementType.I8 => "ScalarType.Int8", ElementType.F64 => "ScalarType.Float64", _ => "ScalarType.Float32" },
                    ["Dims"] = dims,
                    ["Comment"] = $"{p.Attr("name")} {p.Type}",
                    // Scales start at 1 and int8 weights at 0 until FromFloat or a state dict fills them.
                    ["Create"] = p.Type.Element == ElementType.I8 ? "zeros" : "ones",
                };
                if (p.Type.Element == ElementType.I8 || scaleIds.Contains(p.Id))
                {
                    buffers.Add(entry);
                }
                else
                {
                    floatParameters.Add(entry);
                    copies.Add($"target.{Field(p.Id)}.copy_(Int8Conversion.Find(Name, weights, \"{Escape(p.Attr("name")!)}\"{(dims.Length > 0 ? ", " + dims : "")}));");
                }
            }

            data["FloatParameters"] = floatParameters;
            data["Buffers"] = buffers;
            data["Conversion"] = copies.Concat(conversion).ToList();
            data["ScaleFills"] = scaleFills;
        }

        /// <summary>The arguments a dispatch passes for the body's bucket sizes: the (batch, seq) it read from the inputs;
        /// when no input has a seq dimension, the one declared sequence length (the lowerer allows only one then).</summary>
        private static string SizeArgs(IReadOnlyList<(int Batch, int Seq)> buckets, bool hasSeq) =>
            "bucket.batch, " + (hasSeq ? "bucket.seq" : buckets[0].Seq.ToString(CultureInfo.InvariantCulture));

        /// <summary>An inference body, shared by every bucket: the bucket's sizes are its <c>batch</c> and <c>seq</c>.</summary>
        private static List<string> BucketBody(Graph graph, Func<int, string> name, Outlining? outlining = null)
        {
            var keep = new HashSet<int>(graph.Nodes.Where(n => n.Op is OpNames.Input or OpNames.Param).Select(n => n.Id).Concat(graph.Outputs));
            var lines = Statements(graph.Nodes, name, NodeEmitter.Size, keep, outlining);
            var results = graph.Outputs.Select(o => Returned(graph, o, name) + ".MoveToOuterDisposeScope()").ToList();
            lines.Add("");
            lines.Add("return " + (results.Count == 1 ? results[0] : "(" + string.Join(", ", results) + ")") + ";");
            return Indent(lines);
        }

        /// <summary>A returned or saved value must be a tensor the caller may own: inputs and parameters go out as aliases.</summary>
        private static string Returned(Graph graph, int id, Func<int, string> name) =>
            graph[id].Op is OpNames.Input or OpNames.Param ? name(id) + ".alias()" : name(id);

        /// <summary>One statement per computing node, grouped under a comment naming the scope and source line; each value
        /// not in <paramref name="keep"/> is freed right after its last use. With <paramref name="outlining"/>, each
        /// instance of a repeated block is one call of a method emitted once (<see cref="RepeatedBlocks"/>).</summary>
        private static List<string> Statements(IEnumerable<Node> nodes, Func<int, string> name, Func<Dim, string> size, ISet<int> keep, Outlining? outlining = null)
        {
            var lines = new List<string>();
            var all = nodes.ToList();
            var compute = all.Where(n => n.Op is not (OpNames.Input or OpNames.Param or OpNames.Saved or OpNames.GradOutput)).ToList();

            // An observe node is a call on its input, not a new value (Kernels.Observe returns the input itself, which
            // must not be freed twice): its uses are its input's uses.
            var observed = compute.Where(n => n.Op == OpNames.Observe).ToDictionary(n => n.Id, n => n.Inputs[0]);
            if (observed.Count > 0)
            {
                int Resolve(int id) => observed.TryGetValue(id, out var source) ? Resolve(source) : id;
                var outer = name;
                name = id => outer(Resolve(id));
                compute = compute.Select(n => n with { Inputs = n.Inputs.Select(Resolve).ToEquatableArray() }).ToList();
            }

            var lastUse = new Dictionary<int, int>();
            for (var i = 0; i < compute.Count; i++)
            {
                foreach (var input in compute[i].Inputs)
                {
                    lastUse[input] = i;
                }
            }

            var external = new HashSet<int>(all.Where(n => n.Op is OpNames.Input or OpNames.Param or OpNames.Saved or OpNames.GradOutput).Select(n => n.Id));
            var calls = new Dictionary<int, (BlockRun Run, string Method, IReadOnlyList<string> Sizes, ISet<int> FreedInside)>();
            if (outlining is not null)
            {
                var byId = all.ToDictionary(n => n.Id);
                foreach (var (prefix, runs) in RepeatedBlocks.Find(compute, byId, lastUse, keep))
                {
                    // An argument that dies in every instance (the layer's input) is freed inside, right after its last use, as
                    // inline code would; one that dies in some instances only (the mask, in the last layer) after the call.
                    bool Dies(BlockRun run, int arg) => lastUse[arg] <= run.End && !keep.Contains(arg) && !external.Contains(arg);
                    var freedInside = Enumerable.Range(0, runs[0].Args.Count).Where(j => runs.All(r => Dies(r, r.Args[j]))).ToList();
                    var (method, sizes) = Outline(compute, name, runs, prefix, outlining, freedInside);
                    foreach (var run in runs)
                    {
                        calls[run.Start] = (run, method, sizes, new HashSet<int>(freedInside.Select(j => run.Args[j])));
                    }
                }
            }

            var scope = "";
            for (var i = 0; i < compute.Count; i++)
            {
                var node = compute[i];
                var header = node.Scope + (node.Source.Length > 0 ? $" ({node.Source})" : "");
                if (calls.TryGetValue(i, out var call))
                {
                    header = call.Run.Instance + (node.Source.Length > 0 ? $" ({node.Source})" : "");
                }

                if (header != scope)
                {
                    if (lines.Count > 0)
                    {
                        lines.Add("");
                    }

                    lines.Add("// " + (node.Scope.Length > 0 ? header : node.Source));
                    scope = header;
                }

                if (calls.TryGetValue(i, out call))
                {
                    var run = call.Run;
                    var results = run.Results.Select(name).ToList();
                    var target = results.Count == 1 ? "var " + results[0] : "var (" + string.Join(", ", results) + ")";
                    var observes = compute.Skip(run.Start).Take(run.End - run.Start + 1).Any(n => n.Op == OpNames.Observe);
                    var arguments = (observes ? new[] { "\"" + run.Instance + "\"" } : Array.Empty<string>())
                        .Concat(run.Args.Select(name))
                        .Concat(outlining!.Context is { } context ? new[] { context.Substring(context.LastIndexOf(' ') + 1) } : Array.Empty<string>())
                        .Concat(call.Sizes.Select(symbol => size(Dim.Sym(symbol))));
                    lines.Add($"{target} = {call.Method}({string.Join(", ", arguments)}); // %{compute[run.Start].Id}…%{compute[run.End].Id}");
                    var freed = run.Args.Where(a => lastUse[a] <= run.End && !keep.Contains(a) && !external.Contains(a) && !call.FreedInside.Contains(a)).Select(name).ToList();
                    if (freed.Count > 0)
                    {
                        lines.Add("Kernels.Free(" + string.Join(", ", freed) + ");");
                    }

                    i = run.End;
                    continue;
                }

                if (node.Op == OpNames.Observe)
                {
                    lines.Add($"{NodeEmitter.Expression(node, name, size)}; // %{node.Id} observe");
                    continue;
                }

                lines.Add($"var {name(node.Id)} = {NodeEmitter.Expression(node, name, size)}; // %{node.Id} {node.Op} → {node.Type}");
                var dead = node.Inputs.Distinct().Where(input => lastUse[input] == i && !keep.Contains(input) && !external.Contains(input)).Select(name).ToList();
                if (dead.Count > 0)
                {
                    lines.Add("Kernels.Free(" + string.Join(", ", dead) + ");");
                }
            }

            return lines;
        }

        /// <summary>Emits the method of a repeated block from its first instance (names and comments are that instance's)
        /// into the class's methods; returns its name and the bucket sizes it takes after the tensors.</summary>
        private static (string Method, IReadOnlyList<string> Sizes) Outline(IReadOnlyList<Node> compute, Func<int, string> name, IReadOnlyList<BlockRun> runs, string prefix,
            Outlining outlining, IReadOnlyList<int> freedInside)
        {
            var method = RepeatedBlocks.MethodName(prefix) + outlining.Suffix;
            for (var n = 2; !outlining.UsedNames.Add(method); n++)
            {
                method = RepeatedBlocks.MethodName(prefix) + outlining.Suffix + n.ToString(CultureInfo.InvariantCulture);
            }

            var first = runs[0];
            var sizes = new SortedSet<string>(StringComparer.Ordinal);
            string Size(Dim dim)
            {
                if (dim.Symbol is { } symbol)
                {
                    sizes.Add(symbol);
                }

                return NodeEmitter.Size(dim);
            }

            var nodes = compute.Skip(first.Start).Take(first.End - first.Start + 1).ToList();
            var owned = new HashSet<int>(freedInside.Select(j => first.Args[j]));
            var body = Statements(nodes, name, Size, new HashSet<int>(first.Args.Where(a => !owned.Contains(a)).Concat(first.Results)));
            var observes = nodes.Any(n => n.Op == OpNames.Observe);
            if (observes)
            {
                // Each instance observes under its own slot names: "encoder.layer.0.x" becomes block + ".x".
                body = body.Select(l => l.StartsWith("Kernels.Observe(", StringComparison.Ordinal) ? l.Replace("\"" + first.Instance + ".", "block + \".") : l).ToList();
            }

            if (outlining.Preamble is { } preamble)
            {
                body.Insert(0, preamble);
            }

            var results = first.Results.Select(name).ToList();
            body.Add("");
            body.Add("return " + (results.Count == 1 ? results[0] : "(" + string.Join(", ", results) + ")") + ";");
            var parameters = (observes ? new[] { "string block" } : Array.Empty<string>())
                .Concat(first.Args.Select(a => "Tensor " + name(a)))
                .Concat(outlining.Context is { } context ? new[] { context } : Array.Empty<string>())
                .Concat(sizes.Select(s => "long " + s));
            var returnType = results.Count == 1 ? "Tensor" : "(" + string.Join(", ", results.Select(_ => "Tensor")) + ")";
            var methods = outlining.Methods;
            methods.Add("");
            methods.Add($"    /// <summary>One {prefix}.N of {runs.Count} ({string.Join(", ", runs.Select(r => r.Instance.Substring(prefix.Length + 1)))}): emitted from {first.Instance}, whose");
            methods.Add("    /// names and comments it keeps; each instance calls it with its own tensors.</summary>");
            methods.Add($"    private {(outlining.IsStatic ? "static " : "")}{returnType} {method}({string.Join(", ", parameters)})");
            methods.Add("    {");
            methods.AddRange(Indent(body));
            methods.Add("    }");
            return (method, sizes.ToList());
        }

        private static List<string> Indent(IEnumerable<string> lines, int depth = 2) =>
            lines.Select(l => l.Length == 0 ? l : new string(' ', 4 * depth) + l).ToList();

        /// <summary>The training forward, shared by every bucket: the training graph over args (inputs, then parameters) at
        /// the bucket's <c>batch</c> and <c>seq</c>, collecting the values the backward needs into <c>saved</c> when it is given.</summary>
        private static List<string> TrainingForwardBody(Graph training, BackwardGraph backward, IReadOnlyList<int> argIds, Func<int, string> name, Outlining outlining)
        {
            var lines = new List<string>();
            for (var i = 0; i < argIds.Count; i++)
            {
                lines.Add($"var {name(argIds[i])} = args[{i}];");
            }

            lines.Add("using var scope = torch.NewDisposeScope();");
            var keep = new HashSet<int>(argIds.Concat(training.Outputs).Concat(backward.SavedValues));
            lines.AddRange(Statements(training.Nodes, name, NodeEmitter.Size, keep, outlining));
            lines.Add("");
            lines.Add("if (saved is not null)");
            lines.Add("{");
            foreach (var id in backward.SavedValues)
            {
                lines.Add($"    saved.Add({Returned(training, id, name)}.MoveToOuterDisposeScope());");
            }

            lines.Add("}");
            lines.Add("");
            lines.Add("return new List<Tensor> { " + string.Join(", ", training.Outputs.Select(o => Returned(training, o, name) + ".MoveToOuterDisposeScope()")) + " };");
            return Indent(lines);
        }

        /// <summary>The backward, shared by every bucket: saved values and output gradients in, one gradient (or null) per arg
        /// out, then null for the two bucket sizes (apply's last arguments, which are not tensors). The sizes it reads come
        /// from the context, where the forward put them.</summary>
        private static List<string> BackwardBody(BackwardGraph backward, IReadOnlyList<int> argIds, Outlining outlining)
        {
            var graph = backward.Graph;
            string Name(int id) => "g" + id.ToString(CultureInfo.InvariantCulture);
            var lines = new List<string> { "using var scope = torch.NewDisposeScope();", "var saved = ctx.get_saved_variables();" };
            foreach (var node in graph.Nodes.Where(n => n.Op is OpNames.Saved or OpNames.GradOutput))
            {
                lines.Add(node.Op == OpNames.Saved
                    ? $"var {Name(node.Id)} = saved[{backward.SavedValues.Items.IndexOf((int)node.Int("ref"))}]; // saved %{node.Int("ref")}"
                    : $"var {Name(node.Id)} = grads[{node.Int("index")}]; // ∂loss/∂output {node.Int("index")}");
            }

            var sizesRead = new SortedSet<string>(StringComparer.Ordinal);
            string Size(Dim dim)
            {
                if (dim.Symbol is { } symbol)
                {
                    sizesRead.Add(symbol);
                }

                return NodeEmitter.Size(dim);
            }

            var statements = Statements(graph.Nodes, Name, Size, new HashSet<int>(graph.Outputs), outlining);
            foreach (var symbol in sizesRead)
            {
                lines.Add($"var {symbol} = (long)ctx.get_data(\"{symbol}\")!;");
            }

            lines.Add("");
            lines.AddRange(statements);
            var gradients = argIds.Select(arg =>
            {
                var target = backward.Targets.Items.IndexOf(arg);
                if (target < 0)
                {
                    return "null!";
                }

                var id = graph.Outputs[target];
                var shared = graph.Nodes.First(n => n.Id == id).Op is OpNames.Saved or OpNames.GradOutput || graph.Outputs.Take(target).Contains(id);
                return Name(id) + (shared ? ".alias()" : "") + ".MoveToOuterDisposeScope()";
            });
            lines.Add("");
            lines.Add("return new List<Tensor> { " + string.Join(", ", gradients.Concat(new[] { "null!", "null!" })) + " };");
            return Indent(lines, 3);
        }

        /// <summary>"fp64" when any parameter is float64, else "fp32".</summary>
        private static string Precision(IEnumerable<Node> parameters) =>
            parameters.Any(p => p.Type.Element == ElementType.F64) ? "fp64" : "fp32";

        /// <summary>Output names from the declaration's return: the local (or input) it returns, or the locals of a
        /// returned tuple; null (output0, output1, …) when an output is an expression or a name repeats.</summary>
        private static IReadOnlyList<string>? HeadNames(DeclarationSpec model, int outputCount)
        {
            var returned = model.Forward?.Body.LastOrDefault(s => s.Kind == StatementKind.Return)?.Value;
            var items = returned switch
            {
                TupleExpr t => t.Items.ToList(),
                null => new List<DslExpr>(),
                _ => new List<DslExpr> { returned },
            };
            var names = items.Select(e => (e as RefExpr)?.Name).ToList();
            return names.Count == outputCount && names.All(n => n is not null) && names.Distinct(StringComparer.Ordinal).Count() == names.Count
                ? names.Select(n => n!).ToList()
                : null;
        }

        private static string Check(Node input, string name)
        {
            var dtype = input.Type.Element switch
            {
                ElementType.I64 => "ScalarType.Int64",
                ElementType.F64 => "ScalarType.Float64",
                _ => "ScalarType.Float32",
            };
            var dims = string.Join(", ", input.Type.Shape.Select(d => d.ToString()));
            return $"ShapeGuard.Check(Name, \"{Escape(input.Attr("name")!)}\", {name}, {dtype}, {dims});";
        }

        private static string Pack(Node packed)
        {
            var names = packed.Attr("packs")!.Split(',').Select(n => "\"" + Escape(n) + "\"");
            var sizes = packed.Ints("sizes").Select(s => s.ToString(CultureInfo.InvariantCulture));
            return $"new(\"{Escape(packed.Attr("name")!)}\", new[] {{ {string.Join(", ", names)} }}, new long[] {{ {string.Join(", ", sizes)} }})";
        }

        private static string InitMember(string? init) => init switch
        {
            "zeros" => "Zeros",
            "ones" => "Ones",
            "kaiming_uniform" => "KaimingUniform",
            _ => "Normal",
        };

        private static readonly HashSet<string> Reserved = new(StringComparer.Ordinal) { "scope", "training", "bucket", "Name", "batch", "seq" };

        private static string SafeIdentifier(string name)
        {
            var reservedShape = name.Length > 1 && (name[0] == 'x' || name[0] == 'p') && name.Skip(1).All(char.IsDigit);
            return Reserved.Contains(name) || reservedShape ? name + "_" : "@" + name;
        }

        private static string Escape(string text) => text.Replace("\\", "\\\\").Replace("\"", "\\\"");

        /// <summary>An IR text as a packed u8 literal (<see cref="TextPacker"/>): the texts are thousands of lines a
        /// stage, read through IrText(stage) or --dump-ir rather than here.</summary>
        private static string Packed(string text) => "\"" + TextPacker.Pack(text.TrimEnd('\n')) + "\"";

        /// <summary>A raw string literal of any text: its delimiter is one quote longer than the longest run of quotes
        /// inside.</summary>
        private static string RawString(string text)
        {
            var longest = 0;
            var run = 0;
            foreach (var c in text)
            {
                run = c == '"' ? run + 1 : 0;
                longest = Math.Max(longest, run);
            }

            var quotes = new string('"', Math.Max(3, longest + 1));
            return quotes + "\n" + string.Join("\n", text.TrimEnd('\n').Split('\n').Select(l => "        " + l)) + "\n        " + quotes;
        }

        private static Template Load(string name)
        {
            using var stream = typeof(ModelEmitter).Assembly.GetManifestResourceStream($"GraphCompiler.Templates.{name}.scriban")
                ?? throw new InvalidOperationException($"template {name} is not embedded");
            using var reader = new StreamReader(stream);
            var template = Template.Parse(reader.ReadToEnd(), name);
            if (template.HasErrors)
            {
                throw new InvalidOperationException($"template {name}: {string.Join("; ", template.Messages)}");
            }

            return template;
        }

        private static string Render(Template template, Dictionary<string, object> data)
        {
            var globals = new ScriptObject();
            foreach (var kv in data)
            {
                globals[kv.Key] = Wrap(kv.Value);
            }

            var context = new TemplateContext
            {
                StrictVariables = true,
                EnableRelaxedMemberAccess = false,
                MemberRenamer = m => m.Name,
                NewLine = "\n",
                LoopLimit = 0, // a 24-layer model has thousands of lines per bucket
                LimitToString = 0, // and its source is megabytes: never truncate it
            };
            context.PushGlobal(globals);
            return template.Render(context).Replace("\r\n", "\n");
        }

        private static object Wrap(object value) => value switch
        {
            Dictionary<string, object> d => ToScriptObject(d),
            IEnumerable<Dictionary<string, object>> list => list.Select(ToScriptObject).ToList(),
            _ => value,
        };

        private static ScriptObject ToScriptObject(Dictionary<string, object> d)
        {
            var so = new ScriptObject();
            foreach (var kv in d)
            {
                so[kv.Key] = Wrap(kv.Value);
            }

            return so;
        }
    }
}
