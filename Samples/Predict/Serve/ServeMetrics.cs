using Prometheus;

namespace GraphCompiler.Samples.Predict.Serve;

/// <summary>The server's Prometheus metrics (prometheus-net, text exposition on /metrics), in a registry of its own so
/// that several servers in one process (tests) do not share counts.</summary>
public sealed class ServeMetrics
{
    public ServeMetrics(IReadOnlyList<int> batchSizes)
    {
        Registry = Metrics.NewCustomRegistry();
        // process_resident_memory_bytes and friends: the load test's memory check reads them too.
        DotNetStats.Register(Registry);
        var factory = Metrics.WithCustomRegistry(Registry);
        Requests = factory.CreateCounter("inference_requests_total", "Inference requests answered, by HTTP status code.", new CounterConfiguration { LabelNames = ["code"] });
        Latency = factory.CreateHistogram("inference_request_duration_seconds", "Inference request latency from the body read to the response, successful requests.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16) });
        BatchSize = factory.CreateHistogram("inference_batch_size", "Rows (sentence pairs) per forward.",
            new HistogramConfiguration { Buckets = batchSizes.Select(b => (double)b).Prepend(1).Append(2).Append(4).Append(8).Append(16).Distinct().Order().ToArray() });
        Batches = factory.CreateCounter("inference_batches_total", "Forwards run, by static-shape bucket (batch x seq).", new CounterConfiguration { LabelNames = ["bucket"] });
        QueueDepth = factory.CreateGauge("inference_queue_depth", "Requests waiting for the batcher.");
        Rejected = factory.CreateCounter("inference_rejected_total", "Requests refused before the model, by reason.", new CounterConfiguration { LabelNames = ["reason"] });
    }

    public CollectorRegistry Registry { get; }

    public Counter Requests { get; }

    public Histogram Latency { get; }

    public Histogram BatchSize { get; }

    public Counter Batches { get; }

    public Gauge QueueDepth { get; }

    public Counter Rejected { get; }
}
