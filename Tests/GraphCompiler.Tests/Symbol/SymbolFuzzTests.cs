using System.Text.Json.Nodes;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Tests.Declarations;
using GraphCompiler.Tests.Weights;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Symbol;

/// <summary>Mutated symbol files (seeded, so a failure replays): loading, importing and running each either works or
/// fails with a <see cref="SymbolFileException"/> (or, for inputs, the shape guard's ArgumentException) — never another
/// exception, a crash or a hang.</summary>
public class SymbolFuzzTests(ITestOutputHelper output)
{
    private const int TextMutants = 400;
    private const int GraphMutants = 50;

    private const string Replacements = "{}[]\",:0-9ae \\";

    [Fact]
    public void TextMutantsLoadOrFailWithSymbolFileException()
    {
        var random = new Random(20261125);
        var source = EncoderModelModule.SymbolJson;
        var (loaded, refused) = (0, 0);
        for (var i = 0; i < TextMutants; i++)
        {
            var text = MutateText(source, random);
            try
            {
                SymbolFile.Parse(text, $"mutant-{i}");
                loaded++;
            }
            catch (SymbolFileException ex)
            {
                Assert.StartsWith($"mutant-{i}: ", ex.Message, StringComparison.Ordinal);
                refused++;
            }
        }

        output.WriteLine($"{TextMutants} text mutants: {loaded} loaded, {refused} refused with SymbolFileException");
        Assert.True(refused > TextMutants / 4, "the mutations barely changed anything");
    }

    [Fact]
    public void GraphMutantsImportAndRunOrFailNamingTheFile()
    {
        using var dir = new TempDir();
        using var module = new EncoderModelModule();
        var (symbolFile, paramsFile) = ModelExport.Export(module, dir.File("m"));
        var random = new Random(7);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < GraphMutants; i++)
        {
            var graph = JsonNode.Parse(EncoderModelModule.SymbolJson)!.AsObject();
            MutateGraph(graph, random);
            File.WriteAllText(symbolFile, graph.ToJsonString());
            string outcome;
            try
            {
                using var block = SymbolBlock.Imports(symbolFile, new[] { "x", "validLength" }, paramsFile);
                using var scope = NewDisposeScope();
                try
                {
                    block.Run(randn(2, 5, 16), full(2, 3L));
                    outcome = "ran";
                }
                catch (ArgumentException ex) when (ex.Message.StartsWith("Model 'num_encoder'", StringComparison.Ordinal))
                {
                    outcome = "input refused";
                }
            }
            catch (SymbolFileException ex)
            {
                Assert.True(ex.File == symbolFile || ex.File == paramsFile, ex.Message);
                outcome = "refused";
            }

            counts[outcome] = counts.GetValueOrDefault(outcome) + 1;
        }

        output.WriteLine($"{GraphMutants} graph mutants: " + string.Join(", ", counts.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Value} {kv.Key}")));
        Assert.True(counts.GetValueOrDefault("refused") > GraphMutants / 4, "the mutations barely changed anything");
    }

    /// <summary>One to three edits: delete, duplicate or replace a character, or swap a digit.</summary>
    private static string MutateText(string text, Random random)
    {
        var chars = text.ToList();
        for (var edits = random.Next(1, 4); edits > 0; edits--)
        {
            var at = random.Next(chars.Count);
            switch (random.Next(4))
            {
                case 0:
                    chars.RemoveAt(at);
                    break;
                case 1:
                    chars.Insert(at, chars[at]);
                    break;
                case 2:
                    chars[at] = Replacements[random.Next(Replacements.Length)];
                    break;
                default:
                    var digit = chars.FindIndex(at, c => char.IsDigit(c));
                    if (digit >= 0)
                    {
                        chars[digit] = (char)('0' + random.Next(10));
                    }

                    break;
            }
        }

        return new string(chars.ToArray());
    }

    /// <summary>A structural edit that keeps the JSON well-formed: an input id, an op, a dtype, a dim, an attribute,
    /// a head or a node's position.</summary>
    private static void MutateGraph(JsonObject graph, Random random)
    {
        var nodes = graph["nodes"]!.AsArray();
        var node = nodes[random.Next(nodes.Count)]!.AsObject();
        var ids = nodes.Select(n => (int)n!["id"]!).ToList();
        switch (random.Next(7))
        {
            case 0:
                var inputs = node["inputs"]!.AsArray();
                if (inputs.Count > 0)
                {
                    inputs[random.Next(inputs.Count)] = random.Next(4) == 0 ? random.Next(-5, 500) : ids[random.Next(ids.Count)];
                }

                break;
            case 1:
                node["op"] = SymbolInterpreter.SupportedOps.OrderBy(o => o, StringComparer.Ordinal).ElementAt(random.Next(SymbolInterpreter.SupportedOps.Count));
                break;
            case 2:
                node["type"]!["dtype"] = new[] { "f32", "f64", "i64", "i8", "bool", "f33" }[random.Next(6)];
                break;
            case 3:
                var shape = node["type"]!["shape"]!.AsArray();
                if (shape.Count > 0)
                {
                    shape[random.Next(shape.Count)] = new[] { "batch", "seq", "0", "1", "3", "16", "x" }[random.Next(7)];
                }

                break;
            case 4:
                var attrs = node["attrs"]!.AsObject();
                var key = attrs.Count > 0 && random.Next(3) > 0 ? attrs.ElementAt(random.Next(attrs.Count)).Key : "dim";
                attrs[key] = new[] { "-1", "0", "7", "true", "[batch,seq,-1]", "[0,2,1,3]", "1E-12", "", "[]" }[random.Next(9)];
                break;
            case 5:
                graph["heads"]![0]!["node"] = ids[random.Next(ids.Count)];
                break;
            default:
                var from = random.Next(nodes.Count);
                var moved = nodes[from]!;
                nodes.RemoveAt(from);
                nodes.Insert(random.Next(nodes.Count + 1), moved);
                break;
        }
    }
}
