using System.CommandLine;
using System.Runtime.Intrinsics;
using GraphCompiler.Samples.Predict;

// GRAPHCOMPILER_VERBOSE=1 (as for the launcher): which build runs and the vector width it was compiled for (a native
// build fixes it at its x86-64 level: 512 bits at x86-64-v4, 256 at v3, 128 at v2).
if (Environment.GetEnvironmentVariable("GRAPHCOMPILER_VERBOSE") == "1")
{
    var width = Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 128;
    Console.Error.WriteLine($"predict: {Environment.ProcessPath} uses {width}-bit vectors; kernels: {GraphCompiler.Runtime.CpuKernelInfo.Describe()}");
}

var model = new Option<string>("--model") { Description = "Export prefix: reads PREFIX-symbol.json, PREFIX-0000.params and PREFIX-vocab.txt", Required = true };
var input = new Option<string>("--input") { Description = "MRPC-layout TSV: a header line, sentences in columns 3 and 4 (column 0, a label or index, is ignored)", Required = true };
var output = new Option<string>("--output") { Description = "Where to write index<TAB>label<TAB>probability, one line per input row, in input order", Required = true };
var vocab = new Option<string?>("--vocab") { Description = "vocab.txt (default: PREFIX-vocab.txt)" };
var threads = new Option<int>("--threads") { Description = "Intra-op threads (default: libtorch's choice)" };

var root = new RootCommand($"Paraphrase or not: {Predictor.EmbeddedModel} ({Predictor.EmbeddedPrecision}), compiled into this binary. Exit code 0: all rows predicted; 2: some rows were bad (reported with their line) and the rest predicted; 1: nothing written (bad model files, or an input with no usable row).")
{
    model, input, output, vocab, threads,
};
root.SetAction(parse =>
{
    var settings = new PredictSettings(parse.GetValue(model)!, parse.GetValue(input)!, parse.GetValue(output)!)
    {
        Vocab = parse.GetValue(vocab),
        Threads = parse.GetValue(threads),
    };
    try
    {
        var summary = Predictor.Run(settings, Console.Error);
        Console.Error.WriteLine($"predicted {summary.Predicted} rows in {summary.Batches} batches ({summary.ModelSeconds:F2} s in the model)" +
                                (summary.Skipped.Count > 0 ? $"; skipped {summary.Skipped.Count} bad rows" : "") + $" → {settings.Output}");
        return summary.ExitCode;
    }
    catch (PredictException e)
    {
        Console.Error.WriteLine("error: " + e.Message);
        return 1;
    }
});
return root.Parse(args).Invoke();
