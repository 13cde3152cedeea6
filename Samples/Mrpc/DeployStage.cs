using System.Diagnostics;
using System.Text.Json.Nodes;
using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Data;
using GraphCompiler.Runtime.Onnx;
using GraphCompiler.Runtime.Quantization;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Runtime.Training;
using GraphCompiler.Runtime.Weights;
using Microsoft.ML.OnnxRuntime;
using Tensor = TorchSharp.torch.Tensor;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<long>;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Samples.Mrpc;

/// <summary>The tutorial's deployment half: calibrate on dev batches, quantize to int8, export fp32 and int8 as
/// symbol + params (and ONNX), re-import the int8 pair without the generated class, evaluate each, time fp32 vs int8
/// vs ONNX Runtime's dynamically quantized model on one 32 × 128 batch, and run the deployment binary.</summary>
public static class DeployStage
{
    public static JsonObject Run(MiniLmClassifierModule fp32, BatchSource dev, string devFile, GraphCompiler.Runtime.Text.Vocabulary vocabulary, MrpcSettings settings, TextWriter log)
    {
        var dir = Path.Combine(settings.Output, "export");
        Directory.CreateDirectory(dir);
        fp32.eval();

        // Calibration: the tutorial's 5 batches of 32 dev pairs, with the chosen collector (customize unless told).
        var collector = CalibrationCollectors.Create(CalibrationCollectors.ParseMode(settings.Calibration));
        var scales = Calibration.Run(dev.Epoch(0), settings.CalibrationBatches, (batch, observer) =>
        {
            using var owned = batch;
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            fp32.ForwardObserved(batch.TokenIds, batch.SegmentIds, batch.ValidLength, observer);
        }, collector);
        log.WriteLine($"calibrated {scales.Count} activation scales on {settings.CalibrationBatches} dev batches ({settings.Calibration})");

        using var int8 = MiniLmClassifierInt8Module.FromFloat(fp32, scales);
        int8.eval();

        var fp32Dev = Evaluate(b => fp32.call(b.TokenIds, b.SegmentIds, b.ValidLength), dev);
        var int8Dev = Evaluate(b => int8.call(b.TokenIds, b.SegmentIds, b.ValidLength), dev);
        log.WriteLine($"dev fp32: accuracy {fp32Dev.Accuracy:F4} F1 {fp32Dev.F1:F4}; int8: accuracy {int8Dev.Accuracy:F4} F1 {int8Dev.F1:F4}");

        // Export both precisions as symbol + params, the vocabulary beside them (predict needs it), and ONNX.
        var fp32Prefix = Path.Combine(dir, "minilm-fp32");
        var int8Prefix = Path.Combine(dir, "minilm-int8");
        ModelExport.Export(fp32, fp32Prefix);
        ModelExport.Export(int8, int8Prefix);
        foreach (var prefix in new[] { fp32Prefix, int8Prefix })
        {
            AtomicFile.Write(prefix + "-vocab.txt", stream =>
            {
                using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), leaveOpen: true) { NewLine = "\n" };
                foreach (var token in vocabulary.Tokens)
                {
                    writer.WriteLine(token);
                }
            });
        }

        var fp32Onnx = fp32Prefix + ".onnx";
        var int8Onnx = int8Prefix + ".onnx";
        var ortInt8Onnx = fp32Prefix + "-ort-dynamic-int8.onnx";
        ModelExport.ExportOnnx(fp32, fp32Onnx);
        ModelExport.ExportOnnx(int8, int8Onnx);
        OnnxDynamicQuantizer.Quantize(fp32Onnx, ortInt8Onnx);
        // A Triton model repository (scale-out on an existing engine): model.onnx + config.pbtxt per precision.
        var triton = Path.Combine(dir, "triton");
        ModelExport.ExportTriton(fp32, triton);
        ModelExport.ExportTriton(int8, triton, new TritonOptions { Name = "minilm_int8" });

        // Re-import the int8 pair without the generated class: the predictions must be the generated model's.
        var inputNames = SymbolFile.Load(ModelExport.SymbolPath(int8Prefix)).Arguments.Select(a => a.Name).ToArray();
        using var imported = SymbolBlock.Imports(ModelExport.SymbolPath(int8Prefix), inputNames, ModelExport.ParamsPath(int8Prefix));
        var importedDev = Evaluate(b => imported.Run(b.TokenIds, b.SegmentIds, b.ValidLength)[0], dev);
        var samePredictions = importedDev.Predictions.SequenceEqual(int8Dev.Predictions);
        log.WriteLine($"SymbolBlock.Imports(int8): accuracy {importedDev.Accuracy:F4}, predictions {(samePredictions ? "identical to" : "DIFFERENT from")} the generated int8 model's");

        using var ort = new OrtSessions(ortInt8Onnx, inputNames, torch.get_num_threads());
        var ortDev = Evaluate(b => ort.Run(b), dev);

        // Speed: one 32 × 128 batch, medians, all three in this process one after another.
        (double Fp32, double Int8, double Ort)? timed = null;
        if (settings.TimingRuns > 0)
        {
            var timing = TimeBatch(fp32, int8, ort, settings);
            timed = timing;
            log.WriteLine($"32×128 batch, median of {settings.TimingRuns}: fp32 {timing.Fp32:F1} ms, int8 {timing.Int8:F1} ms ({timing.Fp32 / timing.Int8:F2}×), " +
                          $"ONNX Runtime dynamic int8 {timing.Ort:F1} ms (ours {timing.Ort / timing.Int8:F2}× its speed); CPU kernels: {CpuKernelInfo.Describe()}");
        }
        else
        {
            log.WriteLine("32×128 batch timing: skipped (--timing-runs 0)");
        }

        var deploy = RunDeployBinary(settings.DeployExecutable, int8Prefix, devFile, int8Dev, Path.Combine(settings.Output, "predictions-dev.tsv"), log);
        var report = new JsonObject
        {
            ["deploy"] = deploy,
            ["calibration"] = new JsonObject { ["mode"] = settings.Calibration.ToString(), ["batches"] = settings.CalibrationBatches, ["slots"] = scales.Count },
            ["fp32"] = new JsonObject { ["dev"] = Metrics(fp32Dev) },
            ["int8"] = new JsonObject
            {
                ["dev"] = Metrics(int8Dev),
                ["imported_dev"] = Metrics(importedDev),
                ["imported_predictions_identical"] = samePredictions,
            },
            ["ort_int8"] = new JsonObject { ["dev"] = Metrics(ortDev) },
            ["fp32_ms_per_batch"] = timed?.Fp32,
            ["int8_ms_per_batch"] = timed?.Int8,
            ["ort_int8_ms_per_batch"] = timed?.Ort,
            ["int8_speedup_vs_fp32"] = timed?.Fp32 / timed?.Int8,
            ["int8_speed_vs_ort_int8"] = timed?.Ort / timed?.Int8,
            ["cpu_kernels"] = CpuKernelInfo.Describe(),
            ["params_bytes"] = new JsonObject
            {
                ["fp32"] = new FileInfo(ModelExport.ParamsPath(fp32Prefix)).Length,
                ["int8"] = new FileInfo(ModelExport.ParamsPath(int8Prefix)).Length,
                ["ratio"] = (double)new FileInfo(ModelExport.ParamsPath(fp32Prefix)).Length / new FileInfo(ModelExport.ParamsPath(int8Prefix)).Length,
            },
            ["export"] = new JsonObject
            {
                ["fp32"] = Path.GetFullPath(fp32Prefix),
                ["int8"] = Path.GetFullPath(int8Prefix),
                ["fp32_onnx"] = Path.GetFullPath(fp32Onnx),
                ["int8_onnx"] = Path.GetFullPath(int8Onnx),
                ["ort_dynamic_int8_onnx"] = Path.GetFullPath(ortInt8Onnx),
                ["triton_repository"] = Path.GetFullPath(triton),
            },
        };
        return report;
    }

    /// <summary>Runs the published <c>predict</c> binary on dev.tsv with the int8 export and checks its output against
    /// the labels and the in-process int8 model.</summary>
    private static JsonObject RunDeployBinary(string? executable, string int8Prefix, string devFile, ClassifierScores int8Dev, string outputFile, TextWriter log)
    {
        if (executable is null)
        {
            log.WriteLine("deploy: no --deploy binary given (publish it with scripts/publish-predict.sh; scripts/run.sh does)");
            return new JsonObject { ["executable"] = null };
        }

        var full = Path.GetFullPath(executable);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"--deploy: the deployment binary {full} does not exist; publish it with scripts/publish-predict.sh", full);
        }

        var start = new ProcessStartInfo(full) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "--model", int8Prefix, "--input", devFile, "--output", outputFile })
        {
            start.ArgumentList.Add(arg);
        }

        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {full}");
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        watch.Stop();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{full} exited with {process.ExitCode}: {stderr.Result.Trim()}");
        }

        // index = data row (0-based) = source line - 2; labels from column 0 of dev.tsv.
        var labels = File.ReadLines(devFile).Skip(1).Select(l => l.Split('\t')[0].Trim('\uFEFF')).Select(l => l == "1" ? 1 : 0).ToArray();
        var predicted = File.ReadLines(outputFile).Select(l => l.Split('\t')).ToDictionary(f => int.Parse(f[0], System.Globalization.CultureInfo.InvariantCulture), f => int.Parse(f[1], System.Globalization.CultureInfo.InvariantCulture));
        var correct = predicted.Count(p => labels[p.Key] == p.Value);
        var agree = predicted.Count(p => int8Dev.ByLine.TryGetValue(p.Key + 2, out var q) && q == p.Value);
        log.WriteLine($"deploy: {full} predicted {predicted.Count} dev rows in {watch.Elapsed.TotalSeconds:F1} s (process start to exit): accuracy {(double)correct / predicted.Count:F4}, {agree}/{predicted.Count} identical to the in-process int8 model");
        return new JsonObject
        {
            ["executable"] = full,
            ["rows"] = predicted.Count,
            ["dev_accuracy"] = (double)correct / predicted.Count,
            ["identical_to_int8"] = agree,
            ["seconds"] = watch.Elapsed.TotalSeconds,
            ["output"] = Path.GetFullPath(outputFile),
        };
    }

    /// <summary>Accuracy/F1 of a forward over labelled batches, with the per-example predictions.</summary>
    public static ClassifierScores Evaluate(Func<Batch, Tensor> forward, BatchSource data)
    {
        var predictions = new List<int>();
        var labels = new List<int>();
        var byLine = new Dictionary<int, int>();
        using var noGrad = no_grad();
        foreach (var batch in data.Epoch(0))
        {
            using (batch)
            {
                using var scope = NewDisposeScope();
                var label = batch.Label ?? throw new ArgumentException("evaluation needs labelled batches", nameof(data));
                var predicted = forward(batch).narrow(0, 0, batch.Rows).argmax(-1).data<long>().ToArray().Select(p => (int)p).ToArray();
                predictions.AddRange(predicted);
                for (var i = 0; i < predicted.Length; i++)
                {
                    byLine[batch.Lines[i]] = predicted[i];
                }

                labels.AddRange(label.narrow(0, 0, batch.Rows).data<long>().ToArray().Select(l => (int)l));
            }
        }

        var metrics = Runtime.Training.Metrics.Classification(predictions, labels);
        return new ClassifierScores(metrics[Runtime.Training.Metrics.Accuracy], metrics[Runtime.Training.Metrics.F1], predictions, byLine);
    }

    private static JsonObject Metrics(ClassifierScores s) => new() { ["accuracy"] = s.Accuracy, ["f1"] = s.F1, ["examples"] = s.Predictions.Count };

    private static (double Fp32, double Int8, double Ort) TimeBatch(MiniLmClassifierModule fp32, MiniLmClassifierInt8Module int8, OrtSessions ort, MrpcSettings settings)
    {
        const int batch = 32, seq = 128;
        using var scope = NewDisposeScope();
        var generator = new torch.Generator(7);
        var ids = randint(1000, 29000, new long[] { batch, seq }, generator: generator);
        var types = cat(new[] { zeros(batch, seq / 2, dtype: ScalarType.Int64), ones(batch, seq / 2, dtype: ScalarType.Int64) }, 1);
        var lengths = full(new long[] { batch }, (long)seq, ScalarType.Int64);
        var b = (ids, types, lengths);
        using var noGrad = no_grad();
        double Median(Action run)
        {
            run();
            run();
            var times = new double[settings.TimingRuns];
            for (var i = 0; i < times.Length; i++)
            {
                var watch = Stopwatch.StartNew();
                run();
                times[i] = watch.Elapsed.TotalMilliseconds;
            }

            Array.Sort(times);
            return times[times.Length / 2];
        }

        var f = Median(() => fp32.call(b.ids, b.types, b.lengths).Dispose());
        var q = Median(() => int8.call(b.ids, b.types, b.lengths).Dispose());
        var o = Median(() => ort.Run(b.ids, b.types, b.lengths).Dispose());
        return (f, q, o);
    }

    /// <summary>An ONNX Runtime session over an exported classifier, fed from TorchSharp tensors.</summary>
    private sealed class OrtSessions : IDisposable
    {
        private readonly InferenceSession _session;
        private readonly string[] _inputNames;

        public OrtSessions(string path, string[] inputNames, int threads)
        {
            _inputNames = inputNames;
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = threads, InterOpNumThreads = 1 };
            _session = new InferenceSession(path, options);
        }

        public Tensor Run(Batch batch) => Run(batch.TokenIds, batch.SegmentIds, batch.ValidLength);

        public Tensor Run(Tensor ids, Tensor types, Tensor lengths)
        {
            var inputs = new[] { (_inputNames[0], ids), (_inputNames[1], types), (_inputNames[2], lengths) }
                .Select(p => NamedOnnxValue.CreateFromTensor(p.Item1, new DenseTensor(p.Item2.data<long>().ToArray(), p.Item2.shape.Select(d => (int)d).ToArray())))
                .ToList();
            using var results = _session.Run(inputs);
            var output = results[0].AsTensor<float>();
            return tensor(output.ToArray(), output.Dimensions.ToArray().Select(d => (long)d).ToArray());
        }

        public void Dispose() => _session.Dispose();
    }
}

/// <summary>Accuracy and F1 with the predictions in batch order and by source line.</summary>
public sealed record ClassifierScores(double Accuracy, double F1, IReadOnlyList<int> Predictions, IReadOnlyDictionary<int, int> ByLine);
