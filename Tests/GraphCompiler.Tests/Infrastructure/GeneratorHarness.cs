using System.Collections.Immutable;
using GraphCompiler.Generator;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace GraphCompiler.Tests.Infrastructure;

/// <summary>Runs the generator in-process on declarations given as source text.</summary>
public static class GeneratorHarness
{
    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    {
        // The trusted platform assemblies plus the DSL and the runtime that generated code compiles against.
        var platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var extra = new[] { typeof(GraphCompiler.Ops).Assembly.Location, typeof(GraphCompiler.Runtime.Kernels).Assembly.Location, typeof(TorchSharp.torch).Assembly.Location };
        return platform.Concat(extra).Distinct().Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToImmutableArray();
    });

    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    public static CSharpCompilation Compilation(params (string Path, string Source)[] files) =>
        CSharpCompilation.Create(
            "Declarations",
            files.Select(f => CSharpSyntaxTree.ParseText(f.Source, ParseOptions, path: f.Path)),
            References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    public static CSharpCompilation Compilation(string source) => Compilation(("Model.cs", source));

    /// <summary>A referenced assembly as the compiler sees one: the files compiled (through the generator when
    /// <paramref name="withGenerator"/>) and emitted to an in-memory PE image.</summary>
    public static MetadataReference Library(string assemblyName, bool withGenerator, params (string Path, string Source)[] files)
    {
        Compilation compilation = Compilation(files).WithAssemblyName(assemblyName);
        if (withGenerator)
        {
            Driver(trackSteps: false).RunGeneratorsAndUpdateCompilation(compilation, out compilation, out _);
        }

        using var image = new MemoryStream();
        var emitted = compilation.Emit(image);
        if (!emitted.Success)
        {
            throw new InvalidOperationException("the library does not compile:\n" + string.Join("\n", emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        }

        return MetadataReference.CreateFromImage(image.ToArray());
    }

    public static GeneratorDriver Driver(bool trackSteps = true) =>
        CSharpGeneratorDriver.Create(
            new[] { new GraphCompilerGenerator().AsSourceGenerator() },
            parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: trackSteps));

    /// <summary>Runs the generator; returns its result and the compilation with the generated sources added.</summary>
    public static (GeneratorDriverRunResult Result, Compilation Output) Run(CSharpCompilation compilation)
    {
        var driver = Driver().RunGeneratorsAndUpdateCompilation(compilation, out var output, out _);
        return (driver.GetRunResult(), output);
    }

    public static (GeneratorDriverRunResult Result, Compilation Output) Run(string source) => Run(Compilation(source));

    /// <summary>The generated modules, without the declaration manifest every clean build also gets.</summary>
    public static IReadOnlyList<GeneratedSourceResult> ModuleSources(GeneratorRunResult result) =>
        result.GeneratedSources.Where(s => s.HintName != GraphCompiler.Generator.Emit.ManifestEmitter.HintName).ToList();

    /// <summary>The syntax trees of the generated modules, without the declaration manifest.</summary>
    public static IReadOnlyList<SyntaxTree> ModuleTrees(GeneratorDriverRunResult result) =>
        result.GeneratedTrees.Where(t => !t.FilePath.EndsWith(GraphCompiler.Generator.Emit.ManifestEmitter.HintName, StringComparison.Ordinal)).ToList();

    /// <summary>GC diagnostics the generator reported.</summary>
    public static IReadOnlyList<Diagnostic> GeneratorDiagnostics(GeneratorDriverRunResult result) =>
        result.Results.SelectMany(r => r.Diagnostics).OrderBy(d => d.Location.SourceSpan.Start).ToList();

    /// <summary>Errors of the final compilation (generated code included), for "it compiles" assertions.</summary>
    public static IReadOnlyList<Diagnostic> CompileErrors(Compilation output) =>
        output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();

    /// <summary>The text the given diagnostic's location covers.</summary>
    public static string LocatedText(Diagnostic diagnostic) =>
        diagnostic.Location.SourceTree!.GetText().ToString(diagnostic.Location.SourceSpan);

    /// <summary>Declarations share this header in tests.</summary>
    public const string Usings = "using GraphCompiler;\nusing static GraphCompiler.Ops;\n\nnamespace TestModels;\n\n";
}
