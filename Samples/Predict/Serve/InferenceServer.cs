using System.Diagnostics;
using System.Net;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Runtime.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace GraphCompiler.Samples.Predict.Serve;

/// <summary>What <c>predict serve</c> is asked to do.</summary>
public sealed record ServeSettings(string ModelPrefix)
{
    public string Host { get; init; } = "0.0.0.0";

    /// <summary>0: any free port (printed when listening).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>"generated" (the compiled-in module) or "onnxruntime" (ORT on the ONNX export).</summary>
    public string Engine { get; init; } = "generated";

    /// <summary>The ONNX file for the onnxruntime engine (default PREFIX.onnx).</summary>
    public string? Onnx { get; init; }

    public string? Vocab { get; init; }

    public int Threads { get; init; }

    public double MaxBatchDelayMs { get; init; } = 2;

    /// <summary>Requests that may wait for the batcher; one more is refused at once with 503.</summary>
    public int MaxQueue { get; init; } = 128;

    public long MaxBodyBytes { get; init; } = 1 << 20;

    /// <summary>How long a SIGTERM waits for requests in flight before the process exits.</summary>
    public int DrainSeconds { get; init; } = 30;

    /// <summary>Run every bucket once before reporting ready.</summary>
    public bool WarmUp { get; init; } = true;
}

/// <summary><c>predict serve</c>: the Open Inference Protocol (KServe v2) REST API over Kestrel (the slim host,
/// NativeAOT), in front of <see cref="DynamicBatcher"/>; Prometheus metrics on /metrics.</summary>
public static class InferenceServer
{
    public const string Version = "1";

    /// <summary>Loads the model, serves until SIGTERM/SIGINT, drains, returns the exit code (0).</summary>
    public static int Run(ServeSettings settings, TextWriter log)
    {
        var symbolFile = ModelExport.SymbolPath(settings.ModelPrefix);
        var vocabFile = settings.Vocab ?? settings.ModelPrefix + "-vocab.txt";
        var engineFiles = settings.Engine == "onnxruntime" ? [symbolFile, vocabFile] : new[] { symbolFile, ModelExport.ParamsPath(settings.ModelPrefix), vocabFile };
        foreach (var file in engineFiles)
        {
            if (!File.Exists(file))
            {
                throw new PredictException($"file not found: {file} (--model {settings.ModelPrefix} expects the files of an export: PREFIX-symbol.json, PREFIX-0000.params, PREFIX-vocab.txt)");
            }
        }

        SymbolGraph graph;
        try
        {
            graph = SymbolFile.Load(symbolFile);
        }
        catch (SymbolFileException e)
        {
            throw new PredictException(e.Message, e);
        }

        if (graph.Model != DeployedModel.Name)
        {
            throw new PredictException($"{symbolFile} describes model '{graph.Model}', but this binary embeds '{DeployedModel.Name}'; export that model, or build predict for this one.");
        }

        Vocabulary vocabulary;
        try
        {
            vocabulary = Vocabulary.FromFile(vocabFile);
        }
        catch (Exception e) when (e is DataFormatException or IOException or InvalidDataException or ArgumentException)
        {
            throw new PredictException($"{vocabFile}: cannot read the vocabulary: {e.Message}", e);
        }

        using IInferenceEngine engine = settings.Engine switch
        {
            "generated" => new GeneratedEngine(settings.ModelPrefix, graph, settings.Threads),
            "onnxruntime" => new OnnxRuntimeEngine(settings.Onnx ?? settings.ModelPrefix + ".onnx", graph, settings.Threads),
            _ => throw new PredictException($"--engine {settings.Engine}: use generated or onnxruntime"),
        };
        return RunAsync(settings, graph.Model, engine, vocabulary, log).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(ServeSettings settings, string modelName, IInferenceEngine engine, Vocabulary vocabulary, TextWriter log)
    {
        var metrics = new ServeMetrics(engine.Buckets.Select(b => b.Batch).Distinct().ToArray());
        var maxSeq = engine.Buckets.Max(b => b.Seq);
        // Truncated as training truncates (longest sentence first) to the longest bucket.
        var transform = new SentencePairTransform(vocabulary.CreateTokenizer(), new PairTransformOptions { MaxLength = maxSeq, LabelMode = LabelMode.None });
        var watch = Stopwatch.StartNew();
        await using var batcher = new DynamicBatcher(engine, settings.MaxQueue, TimeSpan.FromMilliseconds(settings.MaxBatchDelayMs),
            transform.ClsId, transform.SepId, transform.PadId, metrics, settings.WarmUp);
        metrics.Registry.AddBeforeCollectCallback(() => metrics.QueueDepth.Set(batcher.QueueDepth));
        try
        {
            await batcher.Ready;
        }
        catch (Exception e)
        {
            throw new PredictException($"the warm-up forward failed: {e.Message}", e);
        }
        if (settings.WarmUp)
        {
            log.WriteLine($"warmed up {engine.Buckets.Count} buckets in {watch.Elapsed.TotalSeconds:F1} s");
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Parse(settings.Host), settings.Port);
            kestrel.Limits.MaxRequestBodySize = settings.MaxBodyBytes;
            kestrel.AddServerHeader = false;
        });
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(settings.DrainSeconds));
        await using var app = builder.Build();

        var ready = false;
        var front = new Endpoints(modelName, engine, batcher, transform, metrics, settings, () => ready);
        app.MapGet("/v2", (RequestDelegate)front.ServerMetadata);
        app.MapGet("/v2/health/live", (RequestDelegate)(ctx => Status(ctx, 200)));
        app.MapGet("/v2/health/ready", (RequestDelegate)(ctx => Status(ctx, ready ? 200 : 400)));
        app.MapGet("/v2/models/{name}", (RequestDelegate)front.ModelMetadata);
        app.MapGet("/v2/models/{name}/versions/{version}", (RequestDelegate)front.ModelMetadata);
        app.MapGet("/v2/models/{name}/ready", (RequestDelegate)front.ModelReady);
        app.MapGet("/v2/models/{name}/versions/{version}/ready", (RequestDelegate)front.ModelReady);
        app.MapPost("/v2/models/{name}/infer", (RequestDelegate)front.Infer);
        app.MapPost("/v2/models/{name}/versions/{version}/infer", (RequestDelegate)front.Infer);
        app.MapGet("/metrics", (RequestDelegate)(async ctx =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await metrics.Registry.CollectAndExportAsTextAsync(ctx.Response.Body, ctx.RequestAborted);
        }));
        // Anything else: the protocol's error object, not an empty 404.
        app.MapFallback((RequestDelegate)(ctx => Error(ctx, 404, $"no such endpoint: {ctx.Request.Method} {ctx.Request.Path}")));

        app.Lifetime.ApplicationStarted.Register(() =>
        {
            ready = true;
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            log.WriteLine($"serving model '{modelName}' ({engine.Platform}; buckets {string.Join(", ", engine.Buckets)}) on {string.Join(", ", addresses)}; " +
                          $"batching up to {batcher.MaxBatch} rows within {settings.MaxBatchDelayMs} ms, queue {settings.MaxQueue}");
            log.Flush();
        });
        // On SIGTERM Kestrel stops accepting and waits for the requests in flight, whose answers the batcher still gives.
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            ready = false;
            log.WriteLine("stopping: no new connections; draining the requests in flight");
            log.Flush();
        });

        await app.RunAsync();
        await batcher.DisposeAsync();
        log.WriteLine("stopped");
        log.Flush();
        return 0;
    }

    internal static Task Status(HttpContext ctx, int status)
    {
        ctx.Response.StatusCode = status;
        return Task.CompletedTask;
    }

    internal static Task Error(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(new ErrorResponse(message), ServeJsonContext.Relaxed.ErrorResponse);
    }

    /// <summary>The handlers, over one model.</summary>
    private sealed class Endpoints(string modelName, IInferenceEngine engine, DynamicBatcher batcher, SentencePairTransform transform,
        ServeMetrics metrics, ServeSettings settings, Func<bool> ready)
    {
        private readonly ModelMetadata _metadata = new(modelName, [Version], engine.Platform,
            [new(InferRequestReader.SentenceA, "BYTES", [-1]), new(InferRequestReader.SentenceB, "BYTES", [-1])],
            [new(InferRequestReader.Label, "INT64", [-1]), new(InferRequestReader.Probability, "FP32", [-1])]);

        public Task ServerMetadata(HttpContext ctx) =>
            ctx.Response.WriteAsJsonAsync(new ServerMetadata("graphcompiler-predict", Version, []), ServeJsonContext.Relaxed.ServerMetadata);

        public Task ModelMetadata(HttpContext ctx) =>
            CheckModel(ctx) is { } problem ? problem : ctx.Response.WriteAsJsonAsync(_metadata, ServeJsonContext.Relaxed.ModelMetadata);

        public Task ModelReady(HttpContext ctx) => CheckModel(ctx) ?? Status(ctx, ready() ? 200 : 400);

        public async Task Infer(HttpContext ctx)
        {
            var start = Stopwatch.GetTimestamp();
            var status = await InferAsync(ctx);
            metrics.Requests.WithLabels(status.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();
            if (status == 200)
            {
                metrics.Latency.Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
        }

        private async Task<int> InferAsync(HttpContext ctx)
        {
            if (CheckModel(ctx) is { } problem)
            {
                await problem;
                return ctx.Response.StatusCode;
            }

            InferRequest request;
            PendingRequest pending;
            var truncated = new List<int>();
            using (var arrival = batcher.Arriving())
            {
                try
                {
                    var body = await ReadBody(ctx);
                    request = InferRequestReader.Read(body, batcher.MaxBatch);
                    var rows = new EncodedExample[request.SentenceA.Length];
                    for (var i = 0; i < rows.Length; i++)
                    {
                        rows[i] = Encode(request, i);
                        if (rows[i].Truncated)
                        {
                            truncated.Add(i);
                        }
                    }

                    pending = new PendingRequest(rows);
                }
                catch (InferRequestException e)
                {
                    metrics.Rejected.WithLabels(e.Status == 413 ? "too_large" : "bad_request").Inc();
                    await Error(ctx, e.Status, e.Message);
                    return e.Status;
                }

                if (!batcher.TryEnqueue(pending))
                {
                    metrics.Rejected.WithLabels("queue_full").Inc();
                    ctx.Response.Headers.RetryAfter = "1";
                    await Error(ctx, 503, ready()
                        ? $"the queue is full ({settings.MaxQueue} requests waiting): retry later"
                        : "the server is shutting down");
                    return 503;
                }
            }

            BatchResult result;
            try
            {
                result = await pending.Result;
            }
            catch (Exception e)
            {
                await Error(ctx, 500, $"the model failed on this request: {e.Message}");
                return 500;
            }

            var n = request.SentenceA.Length;
            var outputs = new List<OutputTensor>(2);
            if (request.WantLabel)
            {
                outputs.Add(new OutputTensor(InferRequestReader.Label, "INT64", [n], new TensorData { Int64 = result.Labels }));
            }

            if (request.WantProbability)
            {
                outputs.Add(new OutputTensor(InferRequestReader.Probability, "FP32", [n], new TensorData { Fp32 = result.Probabilities }));
            }

            var parameters = new InferResponseParameters(result.Bucket.ToString().Replace('×', 'x'), result.BatchRows,
                truncated.Count > 0 ? true : null,
                truncated.Count > 0 ? string.Join(",", truncated) : null,
                truncated.Count > 0 ? batcher.MaxSeq : null);
            await ctx.Response.WriteAsJsonAsync(new InferResponse(modelName, Version, request.Id, parameters, outputs), ServeJsonContext.Relaxed.InferResponse);
            return 200;
        }

        private EncodedExample Encode(InferRequest request, int row)
        {
            try
            {
                return transform.Transform("request", new TsvRow(row, [request.SentenceA[row], request.SentenceB[row]]));
            }
            catch (DataFormatException e)
            {
                // The transform names the sentence as a or b; the protocol's fields are the inputs.
                var field = e.Problem.Contains("sentence b", StringComparison.Ordinal) ? InferRequestReader.SentenceB : InferRequestReader.SentenceA;
                throw new InferRequestException(400, $"input '{field}': data[{row}]: {e.Problem}");
            }
        }

        /// <summary>The body, at most the configured size: a larger one is a 413 naming the limit.</summary>
        private async Task<ReadOnlyMemory<byte>> ReadBody(HttpContext ctx)
        {
            var limit = settings.MaxBodyBytes;
            if (ctx.Request.ContentLength > limit)
            {
                throw new InferRequestException(413, $"the request body is {ctx.Request.ContentLength} bytes; the limit is {limit} (--max-body-bytes)");
            }

            using var buffer = new MemoryStream();
            try
            {
                await ctx.Request.Body.CopyToAsync(buffer, ctx.RequestAborted);
            }
            catch (BadHttpRequestException e) when (e.StatusCode == 413)
            {
                throw new InferRequestException(413, $"the request body is larger than the limit of {limit} bytes (--max-body-bytes)");
            }

            if (buffer.Length == 0)
            {
                throw new InferRequestException(400, "the request body is empty: send an inference request (JSON)");
            }

            return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        }

        /// <summary>A refusal when the path names another model or version, else null.</summary>
        private Task? CheckModel(HttpContext ctx)
        {
            var name = ctx.Request.RouteValues["name"] as string;
            if (name != modelName)
            {
                return Error(ctx, 404, $"model '{name}' is not served here (this server serves '{modelName}')");
            }

            if (ctx.Request.RouteValues.TryGetValue("version", out var version) && version as string != Version)
            {
                return Error(ctx, 404, $"model '{name}' has no version '{version}' (versions: {Version})");
            }

            return null;
        }
    }
}
