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

namespace GraphCompiler.Generator.Emit
{
    /// <summary>Renders a compiled graph as a TorchSharp module: one forward per static shape bucket, shapes as
    /// constants, each value freed after its last use. Every literal is decided here; the template only places strings.</summary>
    public static class ModelEmitter
    {
        public const string Version = "1.0.0";

        private static readonly Lazy<Template> ModuleTemplate = new(() => Load("Module"));

        public static string Emit(DeclarationSpec model, Graph lowered, Graph optimized)
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

            var buckets = info.SeqLens.Select(seq => new Dictionary<string, object>
            {
                ["Batch"] = info.Batch.ToString(CultureInfo.InvariantCulture),
                ["Seq"] = seqInput is null ? "_" : seq.ToString(CultureInfo.InvariantCulture),
                ["Method"] = $"Forward_{info.Batch}x{seq}",
                ["Checks"] = inputs.Select(i => Check(i, inputNames[i.Id], info.Batch, seq)).ToList(),
                ["Lines"] = BucketBody(optimized, NameOf, info.Batch, seq),
            }).ToList();

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
                ["BucketList"] = string.Join(", ", info.SeqLens.Select(s => $"{info.Batch}×{s}")),
                ["BucketInits"] = string.Join(", ", info.SeqLens.Select(s => $"new({info.Batch}, {s})")),
                ["Packs"] = parameters.Where(p => p.Attr("packs") is not null).Select(Pack).ToList(),
                ["Parameters"] = parameters.Select(p => new Dictionary<string, object>
                {
                    ["Field"] = fieldNames[p.Id],
                    ["Name"] = Escape(p.Attr("name")!),
                    ["Init"] = "ParameterInit." + InitMember(p.Attr("init")),
                    ["Dims"] = string.Join(", ", p.Type.Shape.Select(d => d.Size.ToString(CultureInfo.InvariantCulture))),
                    ["Comment"] = $"{p.Attr("name")} {p.Type}",
                }).ToList(),
                ["ModuleTypeArgs"] = string.Join(", ", inputs.Select(_ => "Tensor").Append(returnType)),
                ["ReturnType"] = returnType,
                ["InputParams"] = string.Join(", ", inputs.Select(i => "Tensor " + inputNames[i.Id])),
                ["InputArgs"] = string.Join(", ", inputs.Select(i => inputNames[i.Id])),
                ["BatchExpr"] = $"{inputNames[batchInput.Id]}.shape.Length > {batchInput.Type.Shape.Items.IndexOf(Dim.Batch)} ? {inputNames[batchInput.Id]}.shape[{batchInput.Type.Shape.Items.IndexOf(Dim.Batch)}] : -1",
                ["SeqExpr"] = seqInput is null ? "0L" : $"{inputNames[seqInput.Id]}.shape.Length > {seqInput.Type.Shape.Items.IndexOf(Dim.Seq)} ? {inputNames[seqInput.Id]}.shape[{seqInput.Type.Shape.Items.IndexOf(Dim.Seq)}] : -1",
                ["Bucket"] = buckets,
                ["LoweredIr"] = VerbatimString(IrText.Print(lowered)),
                ["OptimizedIr"] = VerbatimString(IrText.Print(optimized)),
            };

            return Render(ModuleTemplate.Value, data);
        }

        private static List<string> BucketBody(Graph graph, Func<int, string> name, int batch, int seq)
        {
            var lines = new List<string>();
            var compute = graph.Nodes.Where(n => n.Op != OpNames.Input && n.Op != OpNames.Param).ToList();
            var lastUse = new Dictionary<int, int>();
            for (var i = 0; i < compute.Count; i++)
            {
                foreach (var input in compute[i].Inputs)
                {
                    lastUse[input] = i;
                }
            }

            var keep = new HashSet<int>(graph.Nodes.Where(n => n.Op is OpNames.Input or OpNames.Param).Select(n => n.Id).Concat(graph.Outputs));
            var scope = "";
            for (var i = 0; i < compute.Count; i++)
            {
                var node = compute[i];
                var header = node.Scope + (node.Source.Length > 0 ? $" ({node.Source})" : "");
                if (header != scope)
                {
                    if (lines.Count > 0)
                    {
                        lines.Add("");
                    }

                    lines.Add("// " + (node.Scope.Length > 0 ? header : node.Source));
                    scope = header;
                }

                var type = node.Type.Element.ToString().ToLowerInvariant() + "[" + string.Join(",", node.Type.Shape.Select(d => d.Resolve(batch, seq))) + "]";
                lines.Add($"var {name(node.Id)} = {NodeEmitter.Expression(node, name, batch, seq)}; // %{node.Id} {node.Op} → {type}");
                var dead = node.Inputs.Distinct().Where(input => lastUse[input] == i && !keep.Contains(input)).Select(name).ToList();
                if (dead.Count > 0)
                {
                    lines.Add("Kernels.Free(" + string.Join(", ", dead) + ");");
                }
            }

            var results = graph.Outputs.Select(o => keep.Contains(o) && graph[o].Op is OpNames.Input or OpNames.Param ? name(o) + ".alias()" : name(o))
                .Select(r => r + ".MoveToOuterDisposeScope()").ToList();
            lines.Add("");
            lines.Add("return " + (results.Count == 1 ? results[0] : "(" + string.Join(", ", results) + ")") + ";");
            return lines.Select(l => l.Length == 0 ? l : "        " + l).ToList();
        }

        private static string Check(Node input, string name, int batch, int seq)
        {
            var dtype = input.Type.Element switch
            {
                ElementType.I64 => "ScalarType.Int64",
                ElementType.F64 => "ScalarType.Float64",
                _ => "ScalarType.Float32",
            };
            var dims = string.Join(", ", input.Type.Shape.Select(d => d.Resolve(batch, seq).ToString(CultureInfo.InvariantCulture)));
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

        private static readonly HashSet<string> Reserved = new(StringComparer.Ordinal) { "scope", "training", "bucket", "Name" };

        private static string SafeIdentifier(string name)
        {
            var reservedShape = name.Length > 1 && (name[0] == 'x' || name[0] == 'p') && name.Skip(1).All(char.IsDigit);
            return Reserved.Contains(name) || reservedShape ? name + "_" : "@" + name;
        }

        private static string Escape(string text) => text.Replace("\\", "\\\\").Replace("\"", "\\\"");

        private static string VerbatimString(string text)
        {
            // A raw string literal keeps the IR readable in the generated file.
            return "\"\"\"\n" + string.Join("\n", text.TrimEnd('\n').Split('\n').Select(l => "        " + l)) + "\n        \"\"\"";
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
