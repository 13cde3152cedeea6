using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Runtime.Weights;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Samples.Predict.Serve;

/// <summary>One forward of the sentence-pair classifier over a static-shape bucket. Called from the batcher's single
/// loop only, so an engine need not be thread-safe.</summary>
public interface IInferenceEngine : IDisposable
{
    /// <summary>What runs, for logs and the metadata's platform: "graphcompiler_int8", "onnxruntime_onnx", …</summary>
    string Platform { get; }

    /// <summary>The declared static shapes; every call uses one of them.</summary>
    IReadOnlyList<StaticShapeBucket> Buckets { get; }

    /// <summary>Logits, row-major [batch, classes]. ids and types are [batch × seq], lengths [batch].</summary>
    float[] Run(long[] ids, long[] types, long[] lengths, int batch, int seq);
}

/// <summary>The generated TorchSharp module compiled into this binary, fp32 or int8 as the export's symbol file says;
/// only the numbers come from the params file.</summary>
public sealed class GeneratedEngine : IInferenceEngine
{
    private readonly nn.Module<Tensor, Tensor, Tensor, Tensor> _module;

    public GeneratedEngine(string prefix, SymbolGraph graph, int threads)
    {
        // Every batch allocates the same activations: keep freed blocks in glibc's heap (as predict's batch mode does).
        GraphCompiler.Runtime.NativeHeap.KeepFreedMemory();
        if (threads > 0)
        {
            torch.set_num_threads(threads);
        }

        _module = graph.Precision switch
        {
            Precisions.Int8 => new MiniLmClassifierInt8Module(),
            Precisions.Fp32 => new MiniLmClassifierModule(),
            _ => throw new PredictException($"{ModelExport.SymbolPath(prefix)}: precision '{graph.Precision}' is not one this binary serves (fp32, int8)"),
        };
        try
        {
            ModelExport.Load(_module, ModelExport.ParamsPath(prefix));
        }
        catch (Exception e) when (e is WeightFileException or SymbolFileException)
        {
            _module.Dispose();
            throw new PredictException(e.Message, e);
        }

        _module.eval();
        Platform = "graphcompiler_" + graph.Precision;
        Buckets = ((IGraphModule)_module).Buckets;
    }

    public string Platform { get; }

    public IReadOnlyList<StaticShapeBucket> Buckets { get; }

    public float[] Run(long[] ids, long[] types, long[] lengths, int batch, int seq)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var logits = _module.call(tensor(ids, [batch, seq]), tensor(types, [batch, seq]), tensor(lengths, [batch]));
        return logits.contiguous().data<float>().ToArray();
    }

    public void Dispose() => _module.Dispose();
}

/// <summary>ONNX Runtime on the project's own ONNX export of the same model, fed the same bucket shapes: the peer behind
/// the same front end and batcher, so a comparison measures the model, not the server.</summary>
public sealed class OnnxRuntimeEngine : IInferenceEngine
{
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly RunOptions _runOptions = new();

    public OnnxRuntimeEngine(string onnxFile, SymbolGraph graph, int threads)
    {
        if (!File.Exists(onnxFile))
        {
            throw new PredictException($"file not found: {onnxFile} (--engine onnxruntime reads PREFIX.onnx, written by ModelExport.ExportOnnx, or the file given with --onnx)");
        }

        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = threads > 0 ? threads : Environment.ProcessorCount,
            InterOpNumThreads = 1,
        };
        try
        {
            _session = new InferenceSession(onnxFile, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new PredictException($"{onnxFile}: ONNX Runtime cannot load it: {e.Message}", e);
        }

        _inputNames = graph.Arguments.Select(a => a.Name).ToArray();
        var missing = _inputNames.Where(n => !_session.InputMetadata.ContainsKey(n)).ToList();
        if (missing.Count > 0 || _session.OutputMetadata.Count == 0)
        {
            _session.Dispose();
            throw new PredictException($"{onnxFile}: lacks the inputs {string.Join(", ", missing)} of model '{graph.Model}' (it has {string.Join(", ", _session.InputMetadata.Keys)})");
        }

        _outputNames = [_session.OutputNames[0]];
        Platform = "onnxruntime_onnx";
        // The buckets compiled into this binary, as the generated engine uses (the model name was checked to be the
        // embedded one): the same batcher policy for both, whatever buckets an older export declared.
        Buckets = MiniLmClassifierModule.Buckets;
    }

    public string Platform { get; }

    public IReadOnlyList<StaticShapeBucket> Buckets { get; }

    public float[] Run(long[] ids, long[] types, long[] lengths, int batch, int seq)
    {
        long[] matrix = [batch, seq];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, matrix);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(types, matrix);
        using var lengthsValue = OrtValue.CreateTensorValueFromMemory(lengths, [batch]);
        using var outputs = _session.Run(_runOptions, _inputNames, [idsValue, typesValue, lengthsValue], _outputNames);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    public void Dispose()
    {
        _session.Dispose();
        _runOptions.Dispose();
    }
}
