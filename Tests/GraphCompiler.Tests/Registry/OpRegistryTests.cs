using System.Reflection;
using System.Text.RegularExpressions;
using GraphCompiler.Generator;
using GraphCompiler.Generator.Ir;
using GraphCompiler.Generator.Passes;
using GraphCompiler.Registry;
using GraphCompiler.Runtime.Onnx;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Tests.Infrastructure;
using Xunit;

namespace GraphCompiler.Tests.Registry;

/// <summary>The op registry is complete: every op has the bindings its kind requires, and every consumer (ShapeRules,
/// Autodiff, the interpreter, the ONNX exporter, the DSL) agrees with it in both directions.</summary>
public class OpRegistryTests
{
    private static IEnumerable<OpDef> Computing => OpRegistry.All.Where(o => o.Kind != OpKind.Source);

    [Fact]
    public void EveryOpHasTheBindingsItsKindRequires()
    {
        var missing = OpRegistry.All.SelectMany(o => o.Requires()).ToList();
        Assert.True(missing.Count == 0, string.Join("\n", missing));
    }

    [Fact]
    public void AMissingBindingIsReported()
    {
        // The check above must be able to fail: a primitive without gradient, ONNX mapping or kernel is flagged.
        var bare = new OpDef("bare", OpKind.Primitive, "test") { MinInputs = 1, MaxInputs = 1 };
        var problems = bare.Requires().ToList();
        Assert.Contains(problems, p => p.Contains("no kernel", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("no gradient rule", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("no ONNX mapping", StringComparison.Ordinal));

        var undeclared = new OpDef("undeclared", OpKind.Gradient, "test")
        {
            MinInputs = 1, MaxInputs = 1,
            Gradient = GradientSpec.None("test"),
            Kernel = KernelCall.Static("Kernels.X", KernelArg.In(0), KernelArg.Float("eps")),
            Onnx = OnnxMapping.None("test"),
        };
        Assert.Contains(undeclared.Requires(), p => p.Contains("'eps'", StringComparison.Ordinal));
    }

    [Fact]
    public void OpNamesAndRegistryEntriesAreTheSameSet()
    {
        var constants = typeof(OpNames).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string)).Select(f => (string)f.GetRawConstantValue()!).ToHashSet();
        var registered = OpRegistry.All.Select(o => o.Name).ToList();
        Assert.Equal(registered.Count, registered.Distinct().Count());
        Assert.Equal(constants.Order(StringComparer.Ordinal), registered.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ShapeRulesKnowEveryOp()
    {
        // Called with as many (arbitrary) inputs as the op takes, so the registry's arity check passes and the rule runs.
        var anyInput = TensorType.Of(ElementType.F32, Dim.Of(2), Dim.Of(3));
        foreach (var op in OpRegistry.All)
        {
            var node = new Node(0, op.Name, Enumerable.Range(0, op.MinInputs).ToEquatableArray(), TensorType.Of(ElementType.F32), EquatableArray<Attr>.Empty, "", "");
            try
            {
                ShapeRules.Infer(node, Enumerable.Repeat(anyInput, op.MinInputs).ToList());
            }
            catch (ShapeException e) when (e.Message.StartsWith("unknown op", StringComparison.Ordinal))
            {
                Assert.Fail($"ShapeRules has no rule for '{op.Name}'");
            }
            catch (Exception)
            {
                // A rule that refuses no inputs is a rule.
            }
        }
    }

    [Fact]
    public void ShapeRulesCheckTheRegistrysArity()
    {
        var node = new Node(0, OpNames.Tanh, new[] { 0, 1 }.ToEquatableArray(), TensorType.Of(ElementType.F32), EquatableArray<Attr>.Empty, "", "");
        var error = Assert.Throws<ShapeException>(() => ShapeRules.Infer(node, new[] { TensorType.Of(ElementType.F32), TensorType.Of(ElementType.F32) }));
        Assert.Equal("tanh takes 1 inputs, got 2", error.Message);
    }

    [Fact]
    public void CustomGradientsAreExactlyAutodiffsCodedRules()
    {
        var custom = OpRegistry.All.Where(o => o.Gradient?.Kind == GradientKind.Custom).Select(o => o.Name);
        Assert.Equal(custom.Order(StringComparer.Ordinal), Autodiff.CustomRuleOps.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void GradientTermsNameRegisteredOpsAndExistingInputs()
    {
        foreach (var op in OpRegistry.All.Where(o => o.Gradient?.Kind == GradientKind.Rules))
        {
            foreach (var term in op.Gradient!.Terms)
            {
                Assert.InRange(term.Input, 0, op.MaxInputs - 1);
                if (term.Op is not null)
                {
                    Assert.True(OpRegistry.TryGet(term.Op, out var gradOp), $"{op.Name}'s gradient uses unregistered op '{term.Op}'");
                    Assert.InRange(term.Args.Count, gradOp.MinInputs, gradOp.MaxInputs);
                    Assert.All(term.Args.Where(a => a.Kind == GradArgKind.SavedInput), a => Assert.InRange(a.Index, 0, op.MaxInputs - 1));
                }
            }
        }
    }

    [Fact]
    public void EveryExportedOpHasAnInterpreterBindingAndEveryBindingAnOp()
    {
        var exported = OpRegistry.All.Where(o => o.InSymbolGraphs).ToList();
        foreach (var op in exported)
        {
            Assert.True(SymbolInterpreter.BoundKernels.Contains(op.Kernel!.BindingName), $"the interpreter has no binding for {op.Kernel.BindingName} ({op.Name})");
            Assert.Contains(op.Name, SymbolInterpreter.SupportedOps);
        }

        var used = exported.Select(o => o.Kernel!.BindingName).ToHashSet();
        Assert.All(SymbolInterpreter.BoundKernels, k => Assert.True(used.Contains(k), $"binding {k} serves no registered op"));
    }

    [Fact]
    public void ExporterMappingsAreExactlyTheExportersLowerings()
    {
        var written = OpRegistry.All.Where(o => o.Onnx?.Kind == OnnxKind.Exporter).Select(o => o.Name);
        Assert.Equal(written.Order(StringComparer.Ordinal), OnnxExport.ExporterOps.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void DslFunctionsAreTheMembersOfOps()
    {
        var members = typeof(GraphCompiler.Ops).GetMethods(BindingFlags.Public | BindingFlags.Static).Select(m => m.Name).Distinct();
        Assert.Equal(members.Order(StringComparer.Ordinal), OpRegistry.Dsl.Select(f => f.Name).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void NoOpNameIsSpelledOutsideTheRegistry()
    {
        // A string literal equal to an op name in the generator or runtime sources means a consumer bypasses the registry.
        // Names that are also attribute keys ("dropout", "scale") are allowed: those literals are keys.
        var attributeKeys = OpRegistry.All.SelectMany(o => o.Attrs.Select(a => a.Key)).ToHashSet(StringComparer.Ordinal);
        var names = OpRegistry.All.Select(o => o.Name).Where(n => !attributeKeys.Contains(n)).ToHashSet(StringComparer.Ordinal);
        var root = Path.GetFullPath(Path.Combine(Snapshot.Root, "..", ".."));
        var literal = new Regex("\"([a-z0-9_]+)\"", RegexOptions.CultureInvariant);
        var found = new List<string>();
        foreach (var dir in new[] { "Generator", "Runtime" })
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(root, dir), "*.*", SearchOption.AllDirectories)
                         .Where(f => f.EndsWith(".cs", StringComparison.Ordinal) || f.EndsWith(".scriban", StringComparison.Ordinal)))
            {
                var relative = Path.GetRelativePath(root, file).Replace('\\', '/');
                if (relative.StartsWith("Generator/Registry/", StringComparison.Ordinal) || relative.Contains("/obj/", StringComparison.Ordinal) || relative.Contains("/bin/", StringComparison.Ordinal))
                {
                    continue;
                }

                var lines = File.ReadAllLines(file);
                for (var i = 0; i < lines.Length; i++)
                {
                    if (lines[i].TrimStart().StartsWith("//", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    foreach (Match m in literal.Matches(lines[i]))
                    {
                        if (names.Contains(m.Groups[1].Value))
                        {
                            found.Add($"{relative}:{i + 1}: \"{m.Groups[1].Value}\"");
                        }
                    }
                }
            }
        }

        Assert.True(found.Count == 0, "op names spelled outside the registry:\n" + string.Join("\n", found));
    }
}
