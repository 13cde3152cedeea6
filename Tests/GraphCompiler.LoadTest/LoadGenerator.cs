using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Text.Json;

namespace GraphCompiler.LoadTest;

/// <summary>One load level's outcome. Latencies in milliseconds, end to end over HTTP (request sent → response read).</summary>
public sealed record LoadResult(int Concurrency, int Requests, int Errors, double Seconds, double P50Ms, double P99Ms, IReadOnlyList<string> ErrorSamples)
{
    public double Throughput => Requests / Seconds;
}

/// <summary>Closed-loop load: <c>concurrency</c> clients, each sending one single-pair inference request after another
/// (sentence pairs taken round-robin) until the time or the request budget runs out. Bounded in both, loopback only.</summary>
public static class LoadGenerator
{
    /// <summary>The inference request body for one pair (the protocol's JSON).</summary>
    public static byte[] RequestBody(string a, string b, string? id = null)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            if (id is not null)
            {
                w.WriteString("id", id);
            }

            w.WriteStartArray("inputs");
            foreach (var (name, text) in new[] { ("sentence_a", a), ("sentence_b", b) })
            {
                w.WriteStartObject();
                w.WriteString("name", name);
                w.WriteStartArray("shape");
                w.WriteNumberValue(1);
                w.WriteEndArray();
                w.WriteString("datatype", "BYTES");
                w.WriteStartArray("data");
                w.WriteStringValue(text);
                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    public static HttpClient Client(int connections) => new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = Math.Max(1, connections),
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        UseProxy = false,
    })
    { Timeout = TimeSpan.FromSeconds(60) };

    public static async Task<LoadResult> RunAsync(HttpClient client, Uri inferUrl, IReadOnlyList<(string A, string B)> pairs, int concurrency, TimeSpan duration, int maxRequests)
    {
        if (!inferUrl.IsLoopback)
        {
            throw new ArgumentException($"the load test only drives loopback servers, not {inferUrl}", nameof(inferUrl));
        }

        var bodies = pairs.Select(p => RequestBody(p.A, p.B)).ToArray();
        var latencies = new List<double>[concurrency];
        var errors = 0;
        var samples = new List<string>();
        var next = -1;
        var watch = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
        {
            var mine = latencies[w] = new List<double>();
            while (watch.Elapsed < duration)
            {
                var n = Interlocked.Increment(ref next);
                if (n >= maxRequests)
                {
                    break;
                }

                var started = Stopwatch.GetTimestamp();
                string? problem = null;
                try
                {
                    using var content = new ByteArrayContent(bodies[n % bodies.Length]);
                    content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                    using var response = await client.PostAsync(inferUrl, content);
                    var text = await response.Content.ReadAsStringAsync();
                    if (response.StatusCode != HttpStatusCode.OK || !text.Contains("\"probability\"", StringComparison.Ordinal))
                    {
                        problem = $"{(int)response.StatusCode}: {text}";
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    problem = e.Message;
                }

                if (problem is null)
                {
                    mine.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
                else
                {
                    Interlocked.Increment(ref errors);
                    lock (samples)
                    {
                        if (samples.Count < 5)
                        {
                            samples.Add(problem);
                        }
                    }
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);
        var seconds = watch.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        return new LoadResult(concurrency, all.Length + errors, errors, seconds, Percentile(all, 0.50), Percentile(all, 0.99), samples);
    }

    /// <summary>Nearest-rank percentile of sorted values (NaN when there are none).</summary>
    public static double Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];
}
