using System.CommandLine;
using System.Runtime.Intrinsics;
using GraphCompiler.Samples.Predict;
using GraphCompiler.Samples.Predict.Serve;

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
// predict serve: the same model behind the Open Inference Protocol (KServe v2) over HTTP, with dynamic batching.
var serveModel = new Option<string>("--model") { Description = "Export prefix: reads PREFIX-symbol.json, PREFIX-0000.params (generated engine) or PREFIX.onnx (onnxruntime engine), and PREFIX-vocab.txt", Required = true };
var port = new Option<int>("--port") { Description = "TCP port (0: any free port, printed when listening)", DefaultValueFactory = _ => 8080 };
var host = new Option<string>("--host") { Description = "Address to listen on (127.0.0.1 for loopback only)", DefaultValueFactory = _ => "0.0.0.0" };
var engine = new Option<string>("--engine") { Description = "generated: the model compiled into this binary (fp32 or int8, as the export is); onnxruntime: ONNX Runtime on the ONNX export, behind the same front end and batcher", DefaultValueFactory = _ => "generated" };
engine.AcceptOnlyFromAmong("generated", "onnxruntime");
var onnx = new Option<string?>("--onnx") { Description = "The ONNX file for --engine onnxruntime (default: PREFIX.onnx)" };
var serveVocab = new Option<string?>("--vocab") { Description = "vocab.txt (default: PREFIX-vocab.txt)" };
var serveThreads = new Option<int>("--threads") { Description = "Intra-op threads (default: libtorch's or ONNX Runtime's choice)" };
var delay = new Option<double>("--max-batch-delay-ms") { Description = "How long the batcher waits for requests already arriving before it runs a batch", DefaultValueFactory = _ => 2.0 };
var maxQueue = new Option<int>("--max-queue") { Description = "Requests that may wait for the model; beyond it a request gets 503 at once", DefaultValueFactory = _ => 128 };
var maxBody = new Option<long>("--max-body-bytes") { Description = "Largest request body accepted (413 beyond)", DefaultValueFactory = _ => 1L << 20 };
var warmUp = new Option<bool>("--warm-up") { Description = "Run every declared bucket once before reporting ready", DefaultValueFactory = _ => true };
var drain = new Option<int>("--drain-seconds") { Description = "On SIGTERM, how long to wait for requests in flight", DefaultValueFactory = _ => 30 };
var serve = new Command("serve", "Serve the model over HTTP: Open Inference Protocol (KServe v2) REST, dynamic batching into the declared buckets, Prometheus /metrics. SIGTERM drains and exits 0.")
{
    serveModel, port, host, engine, onnx, serveVocab, serveThreads, delay, maxQueue, maxBody, drain, warmUp,
};
serve.SetAction(parse =>
{
    var settings = new ServeSettings(parse.GetValue(serveModel)!)
    {
        Port = parse.GetValue(port),
        Host = parse.GetValue(host)!,
        Engine = parse.GetValue(engine)!,
        Onnx = parse.GetValue(onnx),
        Vocab = parse.GetValue(serveVocab),
        Threads = parse.GetValue(serveThreads),
        MaxBatchDelayMs = parse.GetValue(delay),
        MaxQueue = parse.GetValue(maxQueue),
        MaxBodyBytes = parse.GetValue(maxBody),
        DrainSeconds = parse.GetValue(drain),
        WarmUp = parse.GetValue(warmUp),
    };
    if (settings.MaxQueue < 1 || settings.MaxBodyBytes < 1 || settings.MaxBatchDelayMs < 0 || settings.Port is < 0 or > 65535)
    {
        Console.Error.WriteLine("error: --max-queue and --max-body-bytes must be positive, --max-batch-delay-ms not negative, --port 0 to 65535");
        return 1;
    }

    try
    {
        return InferenceServer.Run(settings, Console.Error);
    }
    catch (PredictException e)
    {
        Console.Error.WriteLine("error: " + e.Message);
        return 1;
    }
});
root.Subcommands.Add(serve);
return root.Parse(args).Invoke();
