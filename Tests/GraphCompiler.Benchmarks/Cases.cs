using System.Diagnostics;
using System.Globalization;
using GraphCompiler.ModelDefs;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Quantization;
using GraphCompiler.Runtime.Training;
using GraphCompiler.Runtime.Weights;
using GraphCompiler.Benchmarks.Peers;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Tensor = TorchSharp.torch.Tensor;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Benchmarks;

/// <summary>One measured case: what ran, the median seconds per iteration, and the process's peak memory. Batch counts
/// the sequences (or data pairs) one iteration handles; Gflop is 0 where FLOPs mean nothing (generator, data).</summary>
public sealed record CaseResult(string Case, string Model, string Peer, int Batch, int Seq, double MedianSeconds, double MinSeconds, double Gflop, long PeakBytes, string Note = "")
{
    /// <summary>Training cases: the median forward, backward and optimizer-step milliseconds.</summary>
    public double[]? PhaseMilliseconds { get; init; }

    public double SequencesPerSecond => Batch / MedianSeconds;

    public double GflopPerSecond => Gflop / MedianSeconds;
}

public sealed record ModelShape(string Name, int Layers, int Hidden, int Heads, int Ffn)
{
    public static ModelShape Of(string name) => name switch
    {
        "minilm" => new(name, 6, 384, 12, 1536),
        "bert_12_768_12" => new(name, 12, 768, 12, 3072),
        _ => throw new ArgumentException($"no benchmark shape for '{name}'"),
    };

    /// <summary>Forward FLOPs of the encoder + pooler + classifier: the GEMMs and the two attention matmuls.</summary>
    public double ForwardGflop(int batch, int seq)
    {
        double tokens = (double)batch * seq;
        var perLayer = (2 * tokens * Hidden * Hidden * 4) + (2 * tokens * Hidden * Ffn * 2) + (2 * 2 * (double)batch * seq * seq * Hidden);
        return ((perLayer * Layers) + (2 * (double)batch * Hidden * Hidden)) / 1e9;
    }
}

/// <summary>The cases. Each runs warm-up iterations, then timed ones; the median is reported.</summary>
public static class Cases
{
    public static CaseResult Run(string spec, int iterations)
    {
        // spec: kind:peer:model:seq[:batch] (batch 32 unless given), e.g. infer:generated:minilm:128:1,
        // int8:onnxruntime:minilm:128, train:stock:minilm:64, gemm:torch:2048:0, generate:incremental:12:0, data:mrpc:train:128
        var parts = spec.Split(':');
        var (kind, peer, model, seq) = (parts[0], parts[1], parts[2], int.Parse(parts[3], CultureInfo.InvariantCulture));
        var batch = parts.Length > 4 ? int.Parse(parts[4], CultureInfo.InvariantCulture) : 32;
        torch.set_num_threads(Environment.ProcessorCount);
        manual_seed(0);

        // Every libtorch-based peer keeps freed blocks in glibc's heap, as the trainer and the deployment binary do (fresh
        // mmap pages cost a page fault and a zero-fill per 4 KiB on every call); ONNX Runtime has its own arena.
        NativeHeap.KeepFreedMemory();
        return kind switch
        {
            "gemm" => Gemm(int.Parse(model, CultureInfo.InvariantCulture), iterations),
            "infer" => Infer(peer, ModelShape.Of(model), batch, seq, iterations),
            "int8" => Int8Infer(peer, ModelShape.Of(model), batch, seq, iterations),
            "train" => Train(peer, ModelShape.Of(model), seq, iterations),
            "generate" => GeneratorCases.Run(peer, int.Parse(model, CultureInfo.InvariantCulture), iterations),
            "data" => DataCases.Run(peer, model, seq, iterations),
            _ => throw new ArgumentException($"unknown case kind '{kind}'"),
        };
    }

    private static CaseResult Gemm(int n, int iterations)
    {
        using var a = randn(n, n);
        using var b = randn(n, n);
        var times = Time(iterations, () => { using var c = matmul(a, b); });
        return Result($"gemm {n}³", "-", "libtorch matmul", 1, n, times, 2.0 * n * n * n / 1e9);
    }

    private static CaseResult Infer(string peer, ModelShape shape, int batch, int seq, int iterations)
    {
        var (ids, types, lengths) = Inputs(batch, seq);
        Action step;
        IDisposable owner;
        switch (peer)
        {
            case "generated":
                {
                    var m = Generated(shape.Name);
                    m.eval();
                    owner = m;
                    step = () => { using var _ = no_grad(); using var y = ((nn.Module<Tensor, Tensor, Tensor, Tensor>)m).call(ids, types, lengths); };
                    break;
                }

            case "stock":
                {
                    var m = Stock(shape);
                    m.eval();
                    owner = m;
                    step = () => { using var _ = no_grad(); using var y = m.call(ids, types, lengths); };
                    break;
                }

            case "onnxruntime" when shape.Name == "minilm":
                {
                    var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = Environment.ProcessorCount };
                    var session = new InferenceSession(MiniLmPackage.Read(MiniLmPackage.ModelResource), options);
                    owner = session;
                    var dims = new[] { batch, seq };
                    var mask = new long[batch * seq];
                    var lens = lengths.data<long>().ToArray();
                    for (var i = 0; i < batch; i++)
                    {
                        for (var j = 0; j < lens[i]; j++)
                        {
                            mask[(i * seq) + j] = 1;
                        }
                    }

                    var feeds = new[]
                    {
                        NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids.data<long>().ToArray(), dims)),
                        NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask, dims)),
                        NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(types.data<long>().ToArray(), dims)),
                    };
                    step = () => { using var r = session.Run(feeds); };
                    break;
                }

            case "onnxruntime-export":
                {
                    // Our own ONNX export of the generated model (same weights, same classifier) on ORT.
                    using var source = Generated(shape.Name);
                    var ort = OrtPeer.Export(source, int8: false);
                    owner = ort;
                    step = () => ort.Run(ids, types, lengths);
                    break;
                }

            default:
                throw new ArgumentException($"no inference peer '{peer}' for {shape.Name}");
        }

        using (owner)
        {
            var times = Time(iterations, step);
            return Result("inference fp32", shape.Name, peer, batch, seq, times, shape.ForwardGflop(batch, seq));
        }
    }

    /// <summary>int8 inference: the generated {Decl}Int8Module (static activation scales from a min/max calibration over
    /// ForwardObserved on a batch-32 input), or ONNX Runtime on the dynamically quantized export of the same fp32 model.</summary>
    private static CaseResult Int8Infer(string peer, ModelShape shape, int batch, int seq, int iterations)
    {
        var (ids, types, lengths) = Inputs(batch, seq);
        IDisposable owner;
        Action step;
        using (var fp32 = Generated(shape.Name))
        {
            fp32.eval();
            switch (peer)
            {
                case "generated":
                    {
                        var int8 = Int8Module(fp32, shape.Name, seq);
                        owner = int8;
                        step = () => { using var _ = no_grad(); using var y = ((nn.Module<Tensor, Tensor, Tensor, Tensor>)int8).call(ids, types, lengths); };
                        break;
                    }

                case "onnxruntime":
                    {
                        var ort = OrtPeer.Export(fp32, int8: true);
                        owner = ort;
                        step = () => ort.Run(ids, types, lengths);
                        break;
                    }

                default:
                    throw new ArgumentException($"no int8 peer '{peer}' for {shape.Name}");
            }
        }

        using (owner)
        {
            var times = Time(iterations, step);
            return Result("inference int8", shape.Name, peer == "generated" ? "generated int8" : "onnxruntime dynamic int8", batch, seq, times, shape.ForwardGflop(batch, seq));
        }
    }

    private static nn.Module Int8Module(nn.Module fp32, string name, int seq)
    {
        // Calibrate on a full training-size batch at this length: the scales then serve every batch size.
        var (ids, types, lengths) = Inputs(32, seq);
        var collector = new MinMaxCollector();
        using (no_grad())
        {
            using var scope = NewDisposeScope();
            switch (fp32)
            {
                case MiniLmClassifierModule m: m.ForwardObserved(ids, types, lengths, collector); break;
                case Bert12ClassifierModule m: m.ForwardObserved(ids, types, lengths, collector); break;
                default: throw new ArgumentException($"no int8 variant of '{name}'");
            }
        }

        nn.Module int8 = fp32 switch
        {
            MiniLmClassifierModule m => MiniLmClassifierInt8Module.FromFloat(m, collector.Scales()),
            Bert12ClassifierModule m => Bert12ClassifierInt8Module.FromFloat(m, collector.Scales()),
            _ => throw new ArgumentException(name),
        };
        int8.eval();
        return int8;
    }

    /// <summary>One optimizer step (forward, backward, AdamW) on a fixed batch. Both peers run as the trainer runs a
    /// model: its <see cref="NativeHeap"/> settings and its <see cref="FusedAdamW"/>, so the step compares the models
    /// (forward and backward), not malloc's page recycling or the optimizer. Each phase's median is recorded.</summary>
    private static CaseResult Train(string peer, ModelShape shape, int seq, int iterations)
    {
        const int batch = 32;
        NativeHeap.KeepFreedMemory();
        var (ids, types, lengths) = Inputs(batch, seq);
        using var labels = randint(0, 2, new long[] { batch });
        nn.Module<Tensor, Tensor, Tensor, Tensor> model = peer switch
        {
            "generated" => (nn.Module<Tensor, Tensor, Tensor, Tensor>)Generated(shape.Name),
            "stock" => Stock(shape),
            _ => throw new ArgumentException($"no training peer '{peer}'"),
        };
        using var _ = model;
        model.train();
        using var optimizer = new FusedAdamW(new[] { new TorchSharp.Modules.AdamW.ParamGroup(model.parameters(), 1e-5) }, 1e-5, 0.9, 0.999, 1e-8, 0);
        var (forward, backward, step) = (new List<double>(), new List<double>(), new List<double>());
        var times = Time(iterations, () =>
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(ids, types, lengths), labels);
            var forwardDone = clock.Elapsed.TotalMilliseconds;
            loss.backward();
            var backwardDone = clock.Elapsed.TotalMilliseconds;
            optimizer.step();
            forward.Add(forwardDone);
            backward.Add(backwardDone - forwardDone);
            step.Add(clock.Elapsed.TotalMilliseconds - backwardDone);
            GC.Collect(); // as the trainer does: TorchSharp frees autograd graphs through finalizers
            GC.WaitForPendingFinalizers();
        });
        var phases = new[] { Median(forward.Skip(1)), Median(backward.Skip(1)), Median(step.Skip(1)) };
        return Result("training step (fwd+bwd+AdamW)", shape.Name, peer == "generated" ? "generated backward" : "stock modules + autograd", batch, seq, times, 3 * shape.ForwardGflop(batch, seq)) with { PhaseMilliseconds = phases };
    }

    private static nn.Module Generated(string name) => name switch
    {
        "minilm" => new MiniLmClassifierModule(),
        "bert_12_768_12" => new Bert12ClassifierModule(),
        _ => throw new ArgumentException(name),
    };

    /// <summary>The stock-module BERT with the generated model's (random) weights, so both compute the same function.</summary>
    private static StockBert Stock(ModelShape shape)
    {
        using var source = Generated(shape.Name);
        var stock = new StockBert(shape.Layers, shape.Hidden, shape.Heads, shape.Ffn);
        stock.LoadFrom(WeightLoader.CheckpointTensors(source).ToDictionary(kv => kv.Key, kv => kv.Value));
        return stock;
    }

    internal static (Tensor Ids, Tensor Types, Tensor Lengths) Inputs(int batch, int seq)
    {
        var ids = randint(1000, 30000, new long[] { batch, seq });
        var types = zeros(new long[] { batch, seq }, ScalarType.Int64);
        types[.., (seq / 2)..] = tensor(1L);
        var lengths = randint(seq * 3 / 4, seq + 1, new long[] { batch });
        return (ids, types, lengths);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToList();
        return sorted.Count == 0 ? double.NaN : sorted[sorted.Count / 2];
    }

    internal static List<double> Time(int iterations, Action step)
    {
        step(); // warm-up: first-touch allocation, lazy initialisation
        var times = new List<double>();
        for (var i = 0; i < iterations; i++)
        {
            var clock = Stopwatch.StartNew();
            step();
            times.Add(clock.Elapsed.TotalSeconds);
        }

        return times;
    }

    internal static CaseResult Result(string kind, string model, string peer, int batch, int seq, List<double> times, double gflop, string note = "")
    {
        times.Sort();
        return new CaseResult(kind, model, peer, batch, seq, times[times.Count / 2], times[0], gflop, ResourceUsage.PeakWorkingSetBytes(), note);
    }
}
