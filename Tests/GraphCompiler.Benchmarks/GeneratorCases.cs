using System.Collections.Immutable;
using System.Diagnostics;
using System.Reflection;
using GraphCompiler.Generator;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace GraphCompiler.Benchmarks;

/// <summary>The generator in-process (a Roslyn GeneratorDriver, as the compiler runs it) on the BERT declarations of
/// ModelDefs, embedded in this assembly: a full run of a fresh driver, and the incremental re-run after an edit to an
/// unrelated file, which must do no generator work.</summary>
public static class GeneratorCases
{
    private static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    private static readonly string[] StepNames = typeof(TrackingNames)
        .GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (string)f.GetRawConstantValue()!).ToArray();

    public static CaseResult Run(string peer, int layers, int iterations)
    {
        var model = layers switch
        {
            12 => "bert_12_768_12",
            24 => "bert_24_1024_16",
            _ => throw new ArgumentException($"no {layers}-layer encoder declared in ModelDefs (12 or 24)"),
        };
        var compilation = Compilation(Declaration(layers), Unrelated(0));
        return peer switch
        {
            "full" => Full(compilation, model, iterations),
            "incremental" => Incremental(compilation, model, iterations),
            _ => throw new ArgumentException($"unknown generator case '{peer}' (full or incremental)"),
        };
    }

    private static CaseResult Full(CSharpCompilation compilation, string model, int iterations)
    {
        string? source = null;
        var times = Cases.Time(iterations, () => source = Driver().RunGenerators(compilation).GetRunResult().GeneratedTrees.Single(t => !t.FilePath.EndsWith(GraphCompiler.Generator.Emit.ManifestEmitter.HintName, StringComparison.Ordinal)).ToString());
        if (!source!.Contains("Int8Module", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{model}: the generator emitted no int8 module");
        }

        return Cases.Result("generator: full run", model, "fresh driver (+ int8 variant)", 1, 0, times, 0, $"{source.Length:N0} characters generated");
    }

    private static CaseResult Incremental(CSharpCompilation compilation, string model, int iterations)
    {
        var driver = Driver().RunGenerators(compilation);
        var edit = 0;
        var steps = 0;
        var times = Cases.Time(iterations, () =>
        {
            edit++;
            var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.Single(t => t.FilePath == "Helpers.cs"), Tree("Helpers.cs", Unrelated(edit)));
            driver = driver.RunGenerators(edited);
            steps = AssertNoWork(driver.GetRunResult().Results.Single(), model);
        });
        return Cases.Result("generator: incremental re-run", model, "after an unrelated edit", 1, 0, times, 0, $"all {steps} tracked step outputs Cached/Unchanged");
    }

    /// <summary>Every output of every tracked step must be Cached or Unchanged: the edit reached no model.</summary>
    private static int AssertNoWork(GeneratorRunResult result, string model)
    {
        var count = 0;
        foreach (var name in StepNames)
        {
            if (!result.TrackedSteps.TryGetValue(name, out var runs))
            {
                throw new InvalidOperationException($"{model}: tracked step '{name}' did not run");
            }

            foreach (var (_, reason) in runs.SelectMany(r => r.Outputs))
            {
                count++;
                if (reason is not (IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged))
                {
                    throw new InvalidOperationException($"{model}: after an unrelated edit, step '{name}' was {reason}");
                }
            }
        }

        return count;
    }

    private static GeneratorDriver Driver() =>
        CSharpGeneratorDriver.Create(
            new[] { new GraphCompilerGenerator().AsSourceGenerator() },
            parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    private static SyntaxTree Tree(string path, string source) => CSharpSyntaxTree.ParseText(source, ParseOptions, path: path);

    private static CSharpCompilation Compilation((string Path, string Source)[] files, string unrelated)
    {
        var platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var extra = new[] { typeof(Ops).Assembly.Location, typeof(Runtime.Kernels).Assembly.Location, typeof(TorchSharp.torch).Assembly.Location };
        var references = platform.Concat(extra).Distinct().Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToImmutableArray();
        return CSharpCompilation.Create(
            "Declarations",
            files.Select(f => Tree(f.Path, f.Source)).Append(Tree("Helpers.cs", unrelated)),
            references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
    }

    /// <summary>The blocks file and, from the models file, only the classifier with that many layers (and its [Quantize]).</summary>
    private static (string Path, string Source)[] Declaration(int layers)
    {
        var blocks = Resource("BertBlocks.cs");
        var models = Resource("BertModels.cs");
        var (from, to) = layers == 12 ? ("/// <summary>BERT-base", "/// <summary>BERT-large") : ("/// <summary>BERT-large", "/// <summary>The all-MiniLM");
        var start = models.IndexOf(from, StringComparison.Ordinal);
        var end = models.IndexOf(to, StringComparison.Ordinal);
        if (start < 0 || end < start)
        {
            throw new InvalidOperationException($"BertModels.cs no longer has '{from}' before '{to}'");
        }

        var header = models.Substring(0, models.IndexOf("///", StringComparison.Ordinal));
        return new[] { ("BertBlocks.cs", blocks), ("BertModels.cs", header + models.Substring(start, end - start)) };
    }

    private static string Unrelated(int edit) => $"namespace Other;\n\npublic static class Helpers\n{{\n    public static int Edit => {edit};\n}}\n";

    private static string Resource(string name)
    {
        using var stream = typeof(GeneratorCases).Assembly.GetManifestResourceStream("GraphCompiler.Benchmarks.ModelDefs." + name)
                           ?? throw new InvalidOperationException($"resource {name} is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
