using GraphCompiler.ModelDefs;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime.Quantization;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Samples.Predict;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Samples;

/// <summary>An int8 MiniLM export (pretrained encoder, calibrated on random tokens) shared by the predict tests.</summary>
public sealed class PredictFixture : IDisposable
{
    public PredictFixture()
    {
        Directory.CreateDirectory(Dir);
        manual_seed(11);
        using var zoo = ModelZoo.GetModel("minilm", pretrained: true);
        var fp32 = (MiniLmClassifierModule)zoo.Module;
        fp32.eval();
        var collector = new MinMaxCollector();
        using (var scope = NewDisposeScope())
        {
            var ids = randint(1000, 20000, new long[] { 32, 32 });
            fp32.ForwardObserved(ids, zeros_like(ids), full(new long[] { 32 }, 32L, ScalarType.Int64), collector);
        }

        using var int8 = MiniLmClassifierInt8Module.FromFloat(fp32, collector.Scales());
        ModelExport.Export(int8, Int8Prefix);
        ModelExport.Export(fp32, Fp32Prefix);
        foreach (var prefix in new[] { Int8Prefix, Fp32Prefix })
        {
            File.WriteAllLines(prefix + "-vocab.txt", zoo.Vocabulary.Tokens);
        }
    }

    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "gc-predict-" + Guid.NewGuid().ToString("N")[..8]);

    public string Int8Prefix => Path.Combine(Dir, "minilm-int8");

    public string Fp32Prefix => Path.Combine(Dir, "minilm-fp32");

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}

/// <summary>The deployment program's contract: MRPC-layout TSV in, <c>index TAB label TAB probability</c> out in input
/// order, bad rows reported by line while the rest are predicted, bad model files a clear error that writes nothing.</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
public class PredictTests(PredictFixture fixture) : IClassFixture<PredictFixture>
{
    private string Input(string name, IEnumerable<string> lines)
    {
        var path = Path.Combine(fixture.Dir, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    private static IReadOnlyList<string> DevLines(int rows) => File.ReadLines(Path.Combine(Mrpc.Directory, "dev.tsv")).Take(rows + 1).ToList();

    [Fact]
    public void PredictsEveryGoodRowInInputOrderAndReportsTheBadOneByLine()
    {
        var lines = DevLines(40).ToList();
        lines.Insert(5, "1\t123\t456\tonly one sentence here"); // line 6 of the file: data row 4, too few fields
        var input = Input("dev-bad-row.tsv", lines);
        var output = Path.Combine(fixture.Dir, "bad-row.out.tsv");
        var errors = new StringWriter();

        var summary = Predictor.Run(new PredictSettings(fixture.Int8Prefix, input, output), errors);

        Assert.Equal(2, summary.ExitCode);
        Assert.Equal(40, summary.Predicted);
        var skipped = Assert.Single(summary.Skipped);
        Assert.Equal(6, skipped.Line);
        Assert.Contains($"{input}:6:", errors.ToString());

        var rows = File.ReadAllLines(output).Select(l => l.Split('\t')).ToList();
        Assert.Equal(40, rows.Count);
        Assert.All(rows, r => Assert.Equal(3, r.Length));
        var indices = rows.Select(r => int.Parse(r[0])).ToList();
        Assert.Equal(Enumerable.Range(0, 41).Where(i => i != 4), indices);
        Assert.All(rows, r => Assert.Contains(r[1], new[] { "0", "1" }));
        Assert.All(rows, r => Assert.InRange(double.Parse(r[2], System.Globalization.CultureInfo.InvariantCulture), 0.5, 1.0));
    }

    [Fact]
    public void ColumnZeroIsIgnoredSoUnlabelledInputPredictsTheSame()
    {
        var labelled = DevLines(33);
        var unlabelled = labelled.Select((l, i) => i == 0 ? l : "x" + i + l[l.IndexOf('\t')..]).ToList();
        var a = Path.Combine(fixture.Dir, "labelled.out.tsv");
        var b = Path.Combine(fixture.Dir, "unlabelled.out.tsv");

        Assert.Equal(0, Predictor.Run(new PredictSettings(fixture.Int8Prefix, Input("labelled.tsv", labelled), a), TextWriter.Null).ExitCode);
        Assert.Equal(0, Predictor.Run(new PredictSettings(fixture.Int8Prefix, Input("unlabelled.tsv", unlabelled), b), TextWriter.Null).ExitCode);

        Assert.Equal(33, File.ReadAllLines(a).Length);
        Assert.Equal(File.ReadAllLines(a), File.ReadAllLines(b));
    }

    [Fact]
    public void AnExportOfAnotherPrecisionIsAClearErrorAndWritesNothing()
    {
        var output = Path.Combine(fixture.Dir, "fp32.out.tsv");
        var ex = Assert.Throws<PredictException>(() => Predictor.Run(new PredictSettings(fixture.Fp32Prefix, Input("few.tsv", DevLines(3)), output), TextWriter.Null));

        Assert.Contains(ModelExport.SymbolPath(fixture.Fp32Prefix), ex.Message);
        Assert.Contains("(fp32)", ex.Message);
        Assert.Contains("(int8)", ex.Message);
        Assert.False(File.Exists(output));
    }

    [Theory]
    [InlineData("empty", "the file is empty")]
    [InlineData("header", "no data rows (a header only)")]
    [InlineData("all-bad", "all 2 data rows are bad")]
    public void AnInputWithNoUsableRowIsAClearErrorAndWritesNothing(string kind, string problem)
    {
        var header = DevLines(0)[0];
        var lines = kind switch
        {
            "empty" => Array.Empty<string>(),
            "header" => new[] { header },
            _ => new[] { header, "1\t2\tonly three fields", "0\tno tabs at all" },
        };
        var input = Input($"no-rows-{kind}.tsv", lines);
        var output = Path.Combine(fixture.Dir, $"no-rows-{kind}.out.tsv");

        var ex = Assert.Throws<PredictException>(() => Predictor.Run(new PredictSettings(fixture.Int8Prefix, input, output), TextWriter.Null));

        Assert.Contains(input, ex.Message);
        Assert.Contains(problem, ex.Message);
        Assert.Contains("prediction needs at least one sentence pair", ex.Message);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void MissingOrTruncatedParamsAreClearErrorsNamingTheFile()
    {
        var prefix = Path.Combine(fixture.Dir, "broken");
        File.Copy(ModelExport.SymbolPath(fixture.Int8Prefix), ModelExport.SymbolPath(prefix), overwrite: true);
        File.Copy(fixture.Int8Prefix + "-vocab.txt", prefix + "-vocab.txt", overwrite: true);
        var input = Input("few2.tsv", DevLines(3));
        var output = Path.Combine(fixture.Dir, "broken.out.tsv");

        var missing = Assert.Throws<PredictException>(() => Predictor.Run(new PredictSettings(prefix, input, output), TextWriter.Null));
        Assert.Contains(ModelExport.ParamsPath(prefix), missing.Message);

        var bytes = File.ReadAllBytes(ModelExport.ParamsPath(fixture.Int8Prefix));
        File.WriteAllBytes(ModelExport.ParamsPath(prefix), bytes[..(bytes.Length / 2)]);
        var truncated = Assert.Throws<PredictException>(() => Predictor.Run(new PredictSettings(prefix, input, output), TextWriter.Null));
        Assert.Contains(ModelExport.ParamsPath(prefix), truncated.Message);
        Assert.False(File.Exists(output));
    }
}
