using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Onnx;
using GraphCompiler.Runtime.Symbol;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace GraphCompiler.Benchmarks.Peers;

/// <summary>ONNX Runtime on our own export of a generated model (ModelExport.ExportOnnx), fp32 or dynamically quantized
/// to int8 by OnnxDynamicQuantizer: the same model, weights and classifier as the generated peer. The files live in a
/// temporary directory removed on dispose.</summary>
public sealed class OrtPeer : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly string _dir;

    private OrtPeer(string path, string[] inputNames, string dir)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = Environment.ProcessorCount, InterOpNumThreads = 1 };
        _session = new InferenceSession(path, options);
        _inputNames = inputNames;
        _dir = dir;
    }

    public static OrtPeer Export(nn.Module generated, bool int8)
    {
        var dir = Directory.CreateTempSubdirectory("gc-bench-onnx-").FullName;
        try
        {
            var fp32 = Path.Combine(dir, "model.onnx");
            ModelExport.ExportOnnx(generated, fp32);
            var path = fp32;
            if (int8)
            {
                path = Path.Combine(dir, "model-int8.onnx");
                OnnxDynamicQuantizer.Quantize(fp32, path);
            }

            var graph = (IGraphModule)generated;
            var inputNames = SymbolFile.Parse(graph.SymbolJson, graph.ModelName + ".SymbolJson").Arguments.Select(a => a.Name).ToArray();
            return new OrtPeer(path, inputNames, dir);
        }
        catch
        {
            Directory.Delete(dir, recursive: true);
            throw;
        }
    }

    /// <summary>One forward; the inputs are converted to ORT tensors inside the timed step, as a server would.</summary>
    public void Run(Tensor ids, Tensor types, Tensor lengths)
    {
        var inputs = new[] { ids, types, lengths }.Select((t, i) =>
            NamedOnnxValue.CreateFromTensor(_inputNames[i], new DenseTensor<long>(t.data<long>().ToArray(), t.shape.Select(d => (int)d).ToArray()))).ToList();
        using var results = _session.Run(inputs);
    }

    public void Dispose()
    {
        _session.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
