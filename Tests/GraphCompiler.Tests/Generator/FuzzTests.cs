using System.Collections.Concurrent;
using System.Diagnostics;
using CsCheck;
using GraphCompiler.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;
using Xunit.Abstractions;

namespace GraphCompiler.Tests.Generator;

/// <summary>Token-level mutation fuzzing of valid declarations: whatever the input, the generator must not throw,
/// must not report GC9999, and must either explain itself (a GC diagnostic or a C# error in the input) or emit
/// source that compiles.</summary>
public class FuzzTests
{
    private const int Mutants = 600;

    /// <summary>CsCheck PCG stream: mutant i is generated from <c>new PCG(Stream, i)</c>, so the run is the same on
    /// every machine and a failure names the seed that reproduces it.</summary>
    private const uint Stream = 20250611;

    private static readonly string[] Sources =
    {
        """
        [Model("mlp")]
        [StaticShapes(Batch = 4, SeqLens = new[] { 8, 16 })]
        public partial class Mlp
        {
            [Hyper] public int Hidden = 32;

            [Forward]
            public Expr Forward([Input(DType.Float32, "batch", "seq", "16")] Expr x)
            {
                var h = Gelu(Linear(x, 16, Hidden, "fc1"));
                h = Dropout(h, 0.1);
                return Linear(h, Hidden, 4, "fc2");
            }
        }
        """,
        """
        [Block]
        public partial class Layer
        {
            [Hyper] public int Hidden;
            [Hyper] public int Heads = 4;
            [Hyper] public double Eps = 1e-12;

            [Forward]
            public Expr Forward(Expr x, Expr mask)
            {
                var q = Linear(x, Hidden, Hidden, "q");
                var k = Linear(x, Hidden, Hidden, "k");
                var v = Linear(x, Hidden, Hidden, "v");
                var a = Attention(q, k, v, mask, Heads, 0.1);
                var h = LayerNorm(x + a, Hidden, Eps, "attn_norm");
                var f = Linear(Gelu(Linear(h, Hidden, 2 * Hidden, "up")), 2 * Hidden, Hidden, "down");
                return LayerNorm(h + f, Hidden, Eps, "ffn_norm");
            }
        }

        [Model("stack")]
        [StaticShapes(Batch = 2, SeqLens = new[] { 8, 16 })]
        public partial class Stack
        {
            [Hyper] public int Vocab = 50;
            [Hyper] public int Hidden = 16;

            [Forward]
            public Expr Forward([Input(DType.Int64, "batch", "seq")] Expr ids, [Input(DType.Int64, "batch")] Expr lengths)
            {
                var x = Embedding(ids, Vocab, Hidden, "words");
                var mask = LengthMask(lengths, ids);
                x = Repeat(2, "layers", new Layer { Hidden = Hidden, Heads = 2 }, x, mask);
                return Linear(Select(x, 1, 0), Hidden, 3, "head");
            }
        }
        """,
        """
        [Model("attn")]
        [StaticShapes(Batch = 2, SeqLens = new[] { 4, 12 })]
        public partial class Attn
        {
            [Hyper] public int Hidden = 24;
            [Hyper] public int Heads = 3;

            [Forward]
            public (Expr, Expr) Forward(
                [Input(DType.Int64, "batch", "seq")] Expr ids,
                [Input(DType.Int64, "batch")] Expr lengths,
                [Input(DType.Float32, "batch", "seq", "Hidden")] Expr features)
            {
                var x = features + PositionEmbedding(ids, 16, Hidden, "positions");
                var mask = LengthMask(lengths, ids);
                var y = Attention(x, x, x, mask, Heads, 0.0);
                var heads = Reshape(y, Batch, Seq, Heads, Hidden / Heads);
                var pooled = Scale(Slice(y, 1, 0, 2), 0.5);
                return (Transpose(heads, 1, 2), Softmax(pooled));
            }
        }
        """,
    };

    private static readonly string[] Numbers = { "0", "-1", "1", "3", "2147483647", "100000", "1e300", "0.5" };

    private readonly ITestOutputHelper _output;

    public FuzzTests(ITestOutputHelper output) => _output = output;

    private enum Kind
    {
        Delete,
        Duplicate,
        Swap,
        Number,
        Identifier,
        String,
        Truncate,
    }

    private sealed record Step(Kind Kind, int A, int B);

    private sealed record Mutant(int Source, Step[] Steps);

    private static readonly Gen<Mutant> GenMutant =
        Gen.Select(
            Gen.Int[0, Sources.Length - 1],
            Gen.Select(Gen.Enum<Kind>(), Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue], (k, a, b) => new Step(k, a, b)).Array[1, 3],
            (s, steps) => new Mutant(s, steps));

    [Fact]
    public void SeedDeclarationsCompileCleanly()
    {
        // A mutant's verdict is meaningful only if the unmutated declaration is valid.
        foreach (var source in Sources)
        {
            var (result, output) = GeneratorHarness.Run(GeneratorHarness.Usings + source);
            Assert.Empty(GeneratorHarness.GeneratorDiagnostics(result));
            Assert.Empty(GeneratorHarness.CompileErrors(output));
            Assert.Single(GeneratorHarness.ModuleTrees(result));
        }
    }

    [Fact]
    public void MutatedDeclarationsNeverCrashTheGenerator()
    {
        var watch = Stopwatch.StartNew();
        var failures = new ConcurrentBag<(int Index, string Report)>();
        var slowest = new ConcurrentBag<(double Seconds, int Index)>();
        int explained = 0, compiled = 0, inputErrorsOnly = 0;
        Parallel.For(0, Mutants, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var pcg = new PCG(Stream, (ulong)i);
            var seed = pcg.ToString();
            var mutant = GenMutant.Generate(pcg, null, out _);
            var (text, applied) = Apply(Sources[mutant.Source], mutant.Steps);
            var started = Stopwatch.GetTimestamp();
            try
            {
                switch (Verdict(text))
                {
                    case Outcome.GcDiagnostic: Interlocked.Increment(ref explained); break;
                    case Outcome.InputErrors: Interlocked.Increment(ref inputErrorsOnly); break;
                    default: Interlocked.Increment(ref compiled); break;
                }
            }
            catch (Exception ex)
            {
                failures.Add((i, $"mutant {i} (CsCheck seed \"{seed}\", source {mutant.Source}, {string.Join("; ", applied)}):\n{ex.Message}\n--- source ---\n{text}"));
            }

            slowest.Add((Stopwatch.GetElapsedTime(started).TotalSeconds, i));
        });

        _output.WriteLine($"{Mutants} mutants in {watch.Elapsed.TotalSeconds:F1} s: {explained} with GC diagnostics, {inputErrorsOnly} with only C# errors, {compiled} compiled");
        _output.WriteLine("slowest: " + string.Join(", ", slowest.OrderByDescending(s => s.Seconds).Take(3).Select(s => $"mutant {s.Index} {s.Seconds:F2} s")));
        Assert.True(failures.IsEmpty, $"{failures.Count} failing mutants; first:\n" + string.Join("\n\n", failures.OrderBy(f => f.Index).Take(3).Select(f => f.Report)));

        // The mutations must exercise both sides of the property, or the test proves nothing.
        Assert.True(explained > Mutants / 10, $"only {explained} mutants got a GC diagnostic");
        Assert.True(compiled > Mutants / 20, $"only {compiled} mutants compiled");
    }

    private enum Outcome
    {
        GcDiagnostic,
        InputErrors,
        Compiled,
    }

    /// <summary>Runs the generator on one mutant and checks the property; throws with the reason when it fails.</summary>
    private static Outcome Verdict(string declarations)
    {
        var input = GeneratorHarness.Compilation(GeneratorHarness.Usings + declarations);
        var (result, output) = GeneratorHarness.Run(input);
        foreach (var generator in result.Results)
        {
            if (generator.Exception is not null)
            {
                throw new InvalidOperationException("the generator threw: " + generator.Exception);
            }
        }

        var diagnostics = GeneratorHarness.GeneratorDiagnostics(result);
        foreach (var d in diagnostics)
        {
            if (d.Id == "GC9999")
            {
                throw new InvalidOperationException("internal error: " + d.GetMessage());
            }

            if (!d.Location.IsInSource)
            {
                throw new InvalidOperationException($"{d.Id} has no source location: {d.GetMessage()}");
            }
        }

        if (diagnostics.Count > 0)
        {
            return Outcome.GcDiagnostic;
        }

        // Binding the whole input is the slow part: only for mutants the generator accepted.
        if (input.GetDiagnostics().Any(d => d.Severity == DiagnosticSeverity.Error))
        {
            return Outcome.InputErrors;
        }

        var errors = GeneratorHarness.CompileErrors(output);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("no diagnostic, valid input, but the output does not compile:\n" + string.Join("\n", errors.Take(5)));
        }

        return Outcome.Compiled;
    }

    /// <summary>Applies the steps to the declarations' tokens; returns the text and what was done, for reports.</summary>
    private static (string Text, List<string> Applied) Apply(string source, IEnumerable<Step> steps)
    {
        var text = source;
        var applied = new List<string>();
        foreach (var step in steps)
        {
            var tokens = CSharpSyntaxTree.ParseText(text, GeneratorHarness.ParseOptions).GetRoot()
                .DescendantTokens().Where(t => t.Span.Length > 0).ToList();
            if (tokens.Count == 0)
            {
                break;
            }

            SyntaxToken Pick(int n, IReadOnlyList<SyntaxToken> from) => from[n % from.Count];
            string Replace(SyntaxToken t, string with) => text.Substring(0, t.SpanStart) + with + text.Substring(t.Span.End);
            var token = Pick(step.A, tokens);
            switch (step.Kind)
            {
                case Kind.Delete:
                    text = Replace(token, "");
                    break;
                case Kind.Duplicate:
                    text = Replace(token, token.Text + " " + token.Text);
                    break;
                case Kind.Swap:
                    {
                        var other = Pick(step.B, tokens);
                        var (first, second) = token.SpanStart <= other.SpanStart ? (token, other) : (other, token);
                        if (first.SpanStart == second.SpanStart)
                        {
                            continue;
                        }

                        text = text.Substring(0, first.SpanStart) + second.Text + text.Substring(first.Span.End, second.SpanStart - first.Span.End) + first.Text + text.Substring(second.Span.End);
                        token = first;
                        break;
                    }

                case Kind.Number or Kind.Identifier or Kind.String:
                    {
                        var kind = step.Kind switch
                        {
                            Kind.Number => SyntaxKind.NumericLiteralToken,
                            Kind.Identifier => SyntaxKind.IdentifierToken,
                            _ => SyntaxKind.StringLiteralToken,
                        };
                        var candidates = tokens.Where(t => t.IsKind(kind)).ToList();
                        if (candidates.Count == 0)
                        {
                            continue;
                        }

                        token = Pick(step.A, candidates);
                        var with = step.Kind == Kind.Number ? Numbers[step.B % Numbers.Length] : Pick(step.B, candidates).Text;
                        text = Replace(token, with);
                        applied.Add($"{step.Kind} '{token.Text}'@{token.SpanStart} -> '{with}'");
                        continue;
                    }

                default:
                    var at = step.A % (text.Length + 1);
                    text = text.Substring(0, at);
                    applied.Add($"Truncate at {at}");
                    continue;
            }

            applied.Add($"{step.Kind} '{token.Text}'@{token.SpanStart}");
        }

        return (text, applied);
    }
}
