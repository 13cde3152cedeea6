using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using GraphCompiler.LoadTest;
using GraphCompiler.ModelDefs;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.Quantization;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Runtime.Text;
using GraphCompiler.Samples.Predict;
using GraphCompiler.Tests.Infrastructure;
using Microsoft.ML.OnnxRuntime;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Samples;

/// <summary>int8 and fp32 exports of MiniLM (pretrained encoder, head and int8 scales from fixed seeds) with the fp32
/// ONNX export, for the serving tests.</summary>
public sealed class ServeFixture : IDisposable
{
    public ServeFixture()
    {
        Directory.CreateDirectory(Dir);
        manual_seed(23);
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
        ModelExport.ExportOnnx(fp32, Fp32Prefix + ".onnx");
        foreach (var prefix in new[] { Int8Prefix, Fp32Prefix })
        {
            File.WriteAllLines(prefix + "-vocab.txt", zoo.Vocabulary.Tokens);
        }

        Vocabulary = zoo.Vocabulary;
    }

    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "gc-serve-" + Guid.NewGuid().ToString("N")[..8]);

    public string Int8Prefix => Path.Combine(Dir, "minilm-int8");

    public string Fp32Prefix => Path.Combine(Dir, "minilm-fp32");

    public Vocabulary Vocabulary { get; }

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}

/// <summary><c>predict serve</c> from the published NativeAOT binary (out/predict/predict, the launcher), on loopback:
/// the Open Inference Protocol's endpoints and JSON, answers equal to the in-process model's and to ONNX Runtime's, every
/// malformed request a 4xx naming the field without harming the requests batched with it, a full queue refused at once,
/// SIGTERM draining what is in flight and exiting 0, and a short load test.</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
public class ServeTests(ServeFixture fixture, ITestOutputHelper output) : IClassFixture<ServeFixture>
{
    private static string Launcher => Path.Combine(PredictBinaryTests.PublishDir, "predict");

    private static readonly HttpClient Http = LoadGenerator.Client(256);

    /// <summary>Starts the published server; without the warm-up of every bucket unless asked (the load test wants it:
    /// it measures memory from a warm start).</summary>
    private async Task<ServerProcess> Start(params string[] args)
    {
        PredictBinaryTests.PublishedOrFail();
        var server = await ServerProcess.StartAsync(Launcher, args.Contains("--warm-up") ? args : [.. args, "--warm-up", "false"], TimeSpan.FromMinutes(3));
        output.WriteLine(server.Stderr);
        return server;
    }

    /// <summary>Dev pairs of varied length (the data is MRPC's, not ours).</summary>
    private static (string A, string B)[] DevPairs(int count) =>
        Mrpc.Pairs("dev").Select(p => (p.A, p.B)).Where((_, i) => i % 7 == 0).Take(count).ToArray();

    private static byte[] Body(IReadOnlyList<(string A, string B)> pairs, string? id = null, string? outputs = null)
    {
        var a = JsonSerializer.Serialize(pairs.Select(p => p.A).ToArray());
        var b = JsonSerializer.Serialize(pairs.Select(p => p.B).ToArray());
        var text = "{" + (id is null ? "" : $"\"id\":\"{id}\",") +
                   $"\"inputs\":[{{\"name\":\"sentence_a\",\"shape\":[{pairs.Count}],\"datatype\":\"BYTES\",\"data\":{a}}},{{\"name\":\"sentence_b\",\"shape\":[{pairs.Count}],\"datatype\":\"BYTES\",\"data\":{b}}}]" +
                   (outputs is null ? "" : $",\"outputs\":{outputs}") + "}";
        return Encoding.UTF8.GetBytes(text);
    }

    private static async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> Send(HttpMethod method, Uri url, byte[]? body = null)
    {
        using var request = new HttpRequestMessage(method, url);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new("application/json");
        }

        var response = await Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    private static (long[] Labels, float[] Probabilities, JsonElement Parameters) Outputs(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var outputs = doc.RootElement.GetProperty("outputs").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!, o => o.Clone());
        var labels = outputs["label"].GetProperty("data").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var probabilities = outputs["probability"].GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        Assert.Equal("INT64", outputs["label"].GetProperty("datatype").GetString());
        Assert.Equal("FP32", outputs["probability"].GetProperty("datatype").GetString());
        Assert.Equal(labels.Length, outputs["label"].GetProperty("shape")[0].GetInt64());
        return (labels, probabilities, doc.RootElement.GetProperty("parameters").Clone());
    }

    /// <summary>P(label 1) from a label and the probability of that label.</summary>
    private static double Paraphrase(long label, double probability) => label == 1 ? probability : 1 - probability;

    [Fact]
    public async Task ServesTheProtocolAndAnswersAsTheInProcessInt8ModelDoes()
    {
        using var server = await Start("--model", fixture.Int8Prefix);
        var root = server.BaseAddress;

        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, new Uri(root, "/v2/health/live"))).Status);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, new Uri(root, "/v2/health/ready"))).Status);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, new Uri(root, "/v2/models/minilm/ready"))).Status);
        var metadata = await Send(HttpMethod.Get, new Uri(root, "/v2/models/minilm"));
        Assert.Equal(HttpStatusCode.OK, metadata.Status);
        using (var doc = JsonDocument.Parse(metadata.Body))
        {
            var m = doc.RootElement;
            Assert.Equal("minilm", m.GetProperty("name").GetString());
            Assert.Equal("graphcompiler_int8", m.GetProperty("platform").GetString());
            Assert.Equal(["sentence_a:BYTES:[-1]", "sentence_b:BYTES:[-1]"], m.GetProperty("inputs").EnumerateArray().Select(Describe));
            Assert.Equal(["label:INT64:[-1]", "probability:FP32:[-1]"], m.GetProperty("outputs").EnumerateArray().Select(Describe));
        }

        // The reference: predict's batch mode in this process, same export, same rows.
        var pairs = DevPairs(6);
        var tsv = Path.Combine(fixture.Dir, "serve-ref.tsv");
        File.WriteAllLines(tsv, pairs.Select((p, i) => $"{i}\tx\ty\t{p.A}\t{p.B}").Prepend("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"));
        var reference = Path.Combine(fixture.Dir, "serve-ref.out.tsv");
        Assert.Equal(0, Predictor.Run(new PredictSettings(fixture.Int8Prefix, tsv, reference), TextWriter.Null).ExitCode);
        var expected = File.ReadAllLines(reference).Select(l => l.Split('\t')).Select(f => (Label: long.Parse(f[1], CultureInfo.InvariantCulture), P: double.Parse(f[2], CultureInfo.InvariantCulture))).ToArray();

        foreach (var path in new[] { "/v2/models/minilm/infer", "/v2/models/minilm/versions/1/infer" })
        {
            var response = await Send(HttpMethod.Post, new Uri(root, path), Body(pairs, id: "req-7"));
            Assert.True(response.Status == HttpStatusCode.OK, response.Body);
            using var doc = JsonDocument.Parse(response.Body);
            Assert.Equal("minilm", doc.RootElement.GetProperty("model_name").GetString());
            Assert.Equal("req-7", doc.RootElement.GetProperty("id").GetString());
            var (labels, probabilities, _) = Outputs(response.Body);
            for (var i = 0; i < pairs.Length; i++)
            {
                // Same int8 graph and kernels, NativeAOT against the JIT; predict's sampler may put a row in a shorter bucket
                // than the server's one batch, and int8 turns such last-bit differences into up to ~3e-3 (PredictBinaryTests).
                Assert.True(Math.Abs(Paraphrase(labels[i], probabilities[i]) - Paraphrase(expected[i].Label, expected[i].P)) <= 3e-3,
                    $"row {i}: served {labels[i]}/{probabilities[i]}, in-process {expected[i].Label}/{expected[i].P}");
                Assert.Equal(expected[i].Label, labels[i]);
            }
        }

        // Only the outputs asked for.
        var only = await Send(HttpMethod.Post, new Uri(root, "/v2/models/minilm/infer"), Body(pairs[..1], outputs: "[{\"name\":\"probability\"}]"));
        Assert.Equal(HttpStatusCode.OK, only.Status);
        Assert.Equal(["probability"], JsonDocument.Parse(only.Body).RootElement.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()));

        var metrics = (await Send(HttpMethod.Get, new Uri(root, "/metrics"))).Body;
        Assert.Contains("inference_requests_total{code=\"200\"} 3", metrics);
        Assert.Contains("inference_request_duration_seconds_bucket", metrics);
        Assert.Contains("inference_batch_size_bucket", metrics);
        Assert.Contains("inference_queue_depth 0", metrics);

        Assert.Equal(0, await server.StopAsync(TimeSpan.FromSeconds(30)));
        static string Describe(JsonElement t) => $"{t.GetProperty("name").GetString()}:{t.GetProperty("datatype").GetString()}:[{string.Join(",", t.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()))}]";
    }

    /// <summary>The generated fp32 model and ONNX Runtime on our ONNX export, both served, against ONNX Runtime in this
    /// process on each pair alone at its own length (no padding, no batching): the batcher's padding and bucket choice
    /// change nothing beyond rounding.</summary>
    [Fact]
    public async Task TheFp32ModelAndOnnxRuntimeServedAgreeWithOnnxRuntimeInProcess()
    {
        var pairs = DevPairs(8);
        var transform = new SentencePairTransform(fixture.Vocabulary.CreateTokenizer(), new PairTransformOptions { MaxLength = 128, LabelMode = LabelMode.None });
        using var session = new InferenceSession(fixture.Fp32Prefix + ".onnx");
        var inputNames = SymbolFile.Load(ModelExport.SymbolPath(fixture.Fp32Prefix)).Arguments.Select(a => a.Name).ToArray();
        var expected = pairs.Select((p, i) =>
        {
            var e = transform.Transform("test", new TsvRow(i, [p.A, p.B]));
            var ids = e.TokenIds.Take(e.ValidLength).Select(t => (long)t).ToArray();
            var types = e.SegmentIds.Take(e.ValidLength).Select(t => (long)t).ToArray();
            using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, [1, ids.Length]);
            using var typesValue = OrtValue.CreateTensorValueFromMemory(types, [1, ids.Length]);
            using var lengthValue = OrtValue.CreateTensorValueFromMemory(new long[] { e.ValidLength }, [1]);
            using var results = session.Run(new RunOptions(), inputNames, [idsValue, typesValue, lengthValue], [session.OutputNames[0]]);
            var logits = results[0].GetTensorDataAsSpan<float>().ToArray();
            var z = Math.Exp(logits[0]) + Math.Exp(logits[1]);
            return Math.Exp(logits[1]) / z;
        }).ToArray();

        foreach (var args in new[] { new[] { "--model", fixture.Fp32Prefix }, ["--model", fixture.Fp32Prefix, "--engine", "onnxruntime"] })
        {
            using var server = await Start(args);
            // One request of all pairs, and each pair alone (a batch-1 bucket).
            var together = Outputs((await Send(HttpMethod.Post, new Uri(server.BaseAddress, "/v2/models/minilm/infer"), Body(pairs))).Body);
            for (var i = 0; i < pairs.Length; i++)
            {
                var alone = Outputs((await Send(HttpMethod.Post, new Uri(server.BaseAddress, "/v2/models/minilm/infer"), Body([pairs[i]]))).Body);
                Assert.StartsWith("1x", alone.Parameters.GetProperty("bucket").GetString());
                foreach (var (name, (labels, probabilities, _), row) in new[] { ("together", together, i), ("alone", alone, 0) })
                {
                    var served = Paraphrase(labels[row], probabilities[row]);
                    Assert.True(Math.Abs(served - expected[i]) <= 1e-4, $"{string.Join(' ', args)}: pair {i} {name}: served P(1) {served}, ONNX Runtime in-process {expected[i]}");
                    Assert.Equal(expected[i] > 0.5 ? 1 : 0, labels[row]);
                }
            }

            Assert.Equal(0, await server.StopAsync(TimeSpan.FromSeconds(30)));
        }
    }

    public static TheoryData<string, byte[], int, string> Malformed()
    {
        static byte[] U(string s) => Encoding.UTF8.GetBytes(s);
        static string Input(string name, string shape, string datatype, string data) => $"{{\"name\":\"{name}\",\"shape\":{shape},\"datatype\":\"{datatype}\",\"data\":{data}}}";
        static byte[] Req(string a, string b) => U($"{{\"inputs\":[{a},{b}]}}");
        var b1 = Input("sentence_b", "[1]", "BYTES", "[\"A cat was sitting on the mat.\"]");
        var invalidUtf8 = U("{\"inputs\":[{\"name\":\"sentence_a\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"ab@@cd\"]}," + b1 + "]}");
        var at = Array.IndexOf(invalidUtf8, (byte)'@');
        (invalidUtf8[at], invalidUtf8[at + 1]) = (0xC3, 0x28);
        return new()
        {
            { "not JSON", U("{\"inputs\": ["), 400, "not valid JSON" },
            { "not an object", U("[1, 2]"), 400, "must be a JSON object" },
            { "no inputs", U("{\"id\":\"x\"}"), 400, "'inputs' is missing" },
            { "wrong datatype", Req(Input("sentence_a", "[1]", "INT64", "[7]"), b1), 400, "inputs[0] 'sentence_a': datatype is 'INT64', expected BYTES" },
            { "2-D shape", Req(Input("sentence_a", "[1,1]", "BYTES", "[\"x\"]"), b1), 400, "inputs[0] 'sentence_a': shape is [1, 1], expected [N]" },
            { "data shorter than shape", Req(Input("sentence_a", "[2]", "BYTES", "[\"x\"]"), b1), 400, "inputs[0] 'sentence_a': 'data' has 1 elements but shape [2]" },
            { "N differs between inputs", Req(Input("sentence_a", "[2]", "BYTES", "[\"x\",\"y\"]"), b1), 400, "input 'sentence_a' has shape [2] but 'sentence_b' has shape [1]" },
            { "more rows than the largest batch", Req(Input("sentence_a", "[33]", "BYTES", "[" + string.Join(',', Enumerable.Repeat("\"x\"", 33)) + "]"), b1), 400, "shape is [33], N must be from 1 to 32" },
            { "a number among the sentences", Req(Input("sentence_a", "[1]", "BYTES", "[42]"), b1), 400, "inputs[0] 'sentence_a': data[0] is a number, expected a string" },
            { "empty sentence", Req(b1.Replace("sentence_b", "sentence_a"), Input("sentence_b", "[1]", "BYTES", "[\"\"]")), 400, "inputs[1] 'sentence_b': data[0] is empty" },
            { "white space only", Req(Input("sentence_a", "[1]", "BYTES", "[\" \\t \"]"), b1), 400, "inputs[0] 'sentence_a': data[0] is empty" },
            { "control characters only", Req(Input("sentence_a", "[1]", "BYTES", "[\"\\u0001\\u0002\"]"), b1), 400, "input 'sentence_a': data[0]: sentence a has no tokens" },
            { "invalid UTF-8", invalidUtf8, 400, "inputs[0] 'sentence_a': data[0] is not valid UTF-8" },
            { "lone surrogate", Req(Input("sentence_a", "[1]", "BYTES", "[\"\\ud800\"]"), b1), 400, "inputs[0] 'sentence_a': data[0] is not valid UTF-8" },
            { "unknown input", Req(Input("sentence_c", "[1]", "BYTES", "[\"x\"]"), b1), 400, "inputs[0] 'sentence_c': unknown input" },
            { "missing input", U("{\"inputs\":[" + b1 + "]}"), 400, "input 'sentence_a' is missing" },
            { "unknown output", U("{\"inputs\":[" + b1.Replace("sentence_b", "sentence_a") + "," + b1 + "],\"outputs\":[{\"name\":\"logits\"}]}"), 400, "outputs[0] 'logits': unknown output" },
            { "empty body", [], 400, "the request body is empty" },
            { "huge body", new byte[(1 << 20) + 1], 413, "the limit is 1048576" },
        };
    }

    /// <summary>Every malformed request class gets its 4xx naming the field, sent while good requests are in flight, and
    /// every good request batched around them gets its answer; an over-long sentence is cut as training cut it, and the
    /// response says so. The process is alive and serving afterwards.</summary>
    [Fact]
    public async Task MalformedRequestsGet4xxNamingTheFieldWhileTheGoodOnesAroundThemSucceed()
    {
        using var server = await Start("--model", fixture.Int8Prefix, "--max-batch-delay-ms", "20");
        var infer = new Uri(server.BaseAddress, "/v2/models/minilm/infer");
        var pairs = DevPairs(4);
        var baseline = Outputs((await Send(HttpMethod.Post, infer, Body(pairs))).Body);

        var bad = Malformed().Select(row => ((string)row[0], (byte[])row[1], (int)row[2], (string)row[3])).ToList();
        var good = Enumerable.Range(0, 24).Select(_ => Send(HttpMethod.Post, infer, Body(pairs))).ToList();
        var refused = bad.Select(b => Send(HttpMethod.Post, infer, b.Item2)).ToList();
        var wrongModel = Send(HttpMethod.Post, new Uri(server.BaseAddress, "/v2/models/bert/infer"), Body(pairs));
        var longPair = (string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", 40)), "A fox jumped.");
        var truncated = Send(HttpMethod.Post, infer, Body([pairs[0], longPair]));

        for (var i = 0; i < bad.Count; i++)
        {
            var (name, _, status, message) = bad[i];
            var (actual, body, _) = await refused[i];
            Assert.True((int)actual == status, $"{name}: status {(int)actual}, expected {status}; body {body}");
            using var doc = JsonDocument.Parse(body);
            var error = doc.RootElement.GetProperty("error").GetString()!;
            Assert.True(error.Contains(message, StringComparison.Ordinal), $"{name}: error '{error}' lacks '{message}'");
            Assert.Single(doc.RootElement.EnumerateObject());
        }

        var (modelStatus, modelBody, _) = await wrongModel;
        Assert.Equal(HttpStatusCode.NotFound, modelStatus);
        Assert.Contains("model 'bert' is not served here", modelBody);

        var batched = false;
        foreach (var task in good)
        {
            var (status, body, _) = await task;
            Assert.True(status == HttpStatusCode.OK, body);
            var (labels, probabilities, parameters) = Outputs(body);
            Assert.Equal(baseline.Labels, labels);
            for (var i = 0; i < labels.Length; i++)
            {
                // int8: another bucket's GEMM shapes may round differently in the last bits (see PredictBinaryTests).
                Assert.True(Math.Abs(probabilities[i] - baseline.Probabilities[i]) <= 3e-3, $"row {i}: {probabilities[i]} vs {baseline.Probabilities[i]}");
            }

            batched |= parameters.GetProperty("batch_size").GetInt32() > pairs.Length;
        }

        Assert.True(batched, "no good request shared a forward with another: the batcher did not batch");

        var (longStatus, longBody, _) = await truncated;
        Assert.Equal(HttpStatusCode.OK, longStatus);
        var longParameters = Outputs(longBody).Parameters;
        Assert.True(longParameters.GetProperty("truncated").GetBoolean());
        Assert.Equal("1", longParameters.GetProperty("truncated_rows").GetString());
        Assert.Equal(128, longParameters.GetProperty("max_tokens").GetInt32());
        Assert.EndsWith("x128", longParameters.GetProperty("bucket").GetString());

        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, new Uri(server.BaseAddress, "/v2/health/ready"))).Status);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Post, infer, Body(pairs))).Status);
        var metrics = (await Send(HttpMethod.Get, new Uri(server.BaseAddress, "/metrics"))).Body;
        Assert.Contains("inference_requests_total{code=\"400\"} " + bad.Count(b => b.Item3 == 400), metrics);
        Assert.Equal(0, await server.StopAsync(TimeSpan.FromSeconds(30)));
    }

    /// <summary>A queue of one request with the model busy on full 32×128 batches: the requests that do not fit are
    /// refused at once with 503, Retry-After and the protocol's error object; the rest are answered.</summary>
    [Fact]
    public async Task AFullQueueIsRefusedAtOnceWith503()
    {
        using var server = await Start("--model", fixture.Int8Prefix, "--max-queue", "1", "--max-batch-delay-ms", "0");
        var infer = new Uri(server.BaseAddress, "/v2/models/minilm/infer");
        var longText = string.Concat(Enumerable.Repeat("word ", 200));
        var full = Body(Enumerable.Repeat((longText, longText), 32).ToList());
        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => Send(HttpMethod.Post, infer, full)));

        var refused = responses.Where(r => r.Status == HttpStatusCode.ServiceUnavailable).ToList();
        Assert.All(responses, r => Assert.Contains(r.Status, new[] { HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable }));
        Assert.NotEmpty(refused);
        Assert.Contains(responses, r => r.Status == HttpStatusCode.OK);
        Assert.All(refused, r =>
        {
            Assert.Contains("the queue is full (1 requests waiting)", r.Body);
            Assert.Equal("1", r.Response.Headers.RetryAfter?.ToString());
        });
        Assert.Equal(0, await server.StopAsync(TimeSpan.FromSeconds(60)));
    }

    /// <summary>SIGTERM while requests are queued: each is still answered, then the process exits 0.</summary>
    [Fact]
    public async Task SigtermDrainsTheRequestsInFlightAndExitsZero()
    {
        using var server = await Start("--model", fixture.Int8Prefix);
        var infer = new Uri(server.BaseAddress, "/v2/models/minilm/infer");
        var longText = string.Concat(Enumerable.Repeat("word ", 200));
        var inFlight = Enumerable.Range(0, 6).Select(_ => Send(HttpMethod.Post, infer, Body(Enumerable.Repeat((longText, longText), 32).ToList()))).ToList();
        // Let them reach the server (each 32×128 forward takes a while), then terminate.
        await Task.Delay(300);
        server.Terminate();
        var responses = await Task.WhenAll(inFlight);
        Assert.All(responses, r => Assert.True(r.Status == HttpStatusCode.OK, $"{r.Status}: {r.Body}"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await server.WaitForExitAsync(cts.Token);
        Assert.Equal(0, server.ExitCode);
        Assert.Contains("stopping: no new connections", server.Stderr);
        Assert.Contains("stopped", server.Stderr);
    }

    /// <summary>The load test, short: 1, 8 and 64 concurrent clients of single-pair requests, a few seconds each. No
    /// errors; resident memory flat (within 10 % after warm-up); the batcher batches (forwards of several rows).</summary>
    [Fact]
    public async Task ShortLoadTestHasNoErrorsFlatMemoryAndBatchesUnderConcurrency()
    {
        using var server = await Start("--model", fixture.Int8Prefix, "--warm-up", "true");
        var infer = new Uri(server.BaseAddress, "/v2/models/minilm/infer");
        var pairs = Mrpc.Pairs("dev").Select(p => (p.A, p.B)).Take(200).ToArray();
        using var client = LoadGenerator.Client(64);
        // The server warmed every bucket up; this warms the HTTP side (connections, buffers, the GC's heap).
        await LoadGenerator.RunAsync(client, infer, pairs, 64, TimeSpan.FromSeconds(3), 1000);
        await LoadGenerator.RunAsync(client, infer, pairs, 8, TimeSpan.FromSeconds(2), 1000);
        var before = server.ResidentBytes();
        var results = new List<LoadResult>();
        foreach (var concurrency in new[] { 1, 8, 64 })
        {
            var result = await LoadGenerator.RunAsync(client, infer, pairs, concurrency, TimeSpan.FromSeconds(4), 5000);
            output.WriteLine($"concurrency {concurrency}: {result.Requests} requests, {result.Throughput:F1}/s, p50 {result.P50Ms:F1} ms, p99 {result.P99Ms:F1} ms, {result.Errors} errors {string.Join(" | ", result.ErrorSamples)}");
            results.Add(result);
        }

        var after = server.ResidentBytes();
        output.WriteLine($"RSS {before / 1e6:F0} MB → {after / 1e6:F0} MB");
        Assert.All(results, r => Assert.True(r.Errors == 0, $"concurrency {r.Concurrency}: {r.Errors} errors: {string.Join(" | ", r.ErrorSamples)}"));
        Assert.All(results, r => Assert.True(r.Requests > 0, $"concurrency {r.Concurrency}: no request completed"));
        Assert.True(after <= before * 1.10, $"resident memory grew from {before / 1e6:F0} MB to {after / 1e6:F0} MB (> 10 %)");
        // Throughput ratios are the benchmark's (BENCHMARKS.md), not a timed test's: on a shared 2-core machine they move
        // with the neighbours' load. That forwards under concurrency hold several rows is checked here.
        var metrics = (await Send(HttpMethod.Get, new Uri(server.BaseAddress, "/metrics"))).Body;
        var single = metrics.Split('\n').First(l => l.StartsWith("inference_batch_size_bucket{le=\"1\"}", StringComparison.Ordinal));
        var count = metrics.Split('\n').First(l => l.StartsWith("inference_batch_size_count", StringComparison.Ordinal));
        Assert.True(double.Parse(single.Split(' ')[1], CultureInfo.InvariantCulture) < double.Parse(count.Split(' ')[1], CultureInfo.InvariantCulture), $"every forward had one row: {single}, {count}");
        Assert.Equal(0, await server.StopAsync(TimeSpan.FromSeconds(30)));
    }
}
