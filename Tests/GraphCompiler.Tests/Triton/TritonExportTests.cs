using System.Diagnostics;
using System.Reflection;
using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Tests.Infrastructure;
using GraphCompiler.Tests.Weights;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit;
using Xunit.Abstractions;
using Xunit.Sdk;
using YamlDotNet.RepresentationModel;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Triton;

/// <summary>The scale-out artifacts, as far as they can be checked without Triton, Kubernetes or Docker: the Triton
/// model repository's config.pbtxt parses as Triton's ModelConfig (protoc against its schema) and describes the
/// model.onnx beside it as ONNX Runtime sees it; the KServe manifests parse and point at the server's endpoints.</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
public class TritonExportTests(ITestOutputHelper output)
{
    private static string Metadata(string key) =>
        typeof(TritonExportTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    private static string Repo => Path.GetFullPath(Path.Combine(Snapshot.Root, "..", ".."));

    /// <summary>config.pbtxt read by protoc against Triton's ModelConfig schema (an unknown field, a wrong type or a
    /// syntax error fails), then parsed into the generated classes.</summary>
    private static ModelConfig ParseConfig(string configFile)
    {
        var proto = Metadata("TritonProto");
        var start = new ProcessStartInfo(Metadata("Protoc")) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "--encode=inference.ModelConfig", $"--proto_path={Path.GetDirectoryName(proto)}", Path.GetFileName(proto) })
        {
            start.ArgumentList.Add(arg);
        }

        using var protoc = Process.Start(start)!;
        protoc.StandardInput.Write(File.ReadAllText(configFile));
        protoc.StandardInput.Close();
        using var bytes = new MemoryStream();
        var copy = protoc.StandardOutput.BaseStream.CopyToAsync(bytes);
        var errors = protoc.StandardError.ReadToEnd();
        protoc.WaitForExit();
        copy.Wait();
        if (protoc.ExitCode != 0)
        {
            throw new XunitException($"{configFile} is not a valid inference.ModelConfig: {errors}");
        }

        return ModelConfig.Parser.ParseFrom(bytes.ToArray());
    }

    [Fact]
    public void TheTritonRepositoryParsesAndDescribesTheOnnxModelAsOnnxRuntimeLoadsIt()
    {
        using var dir = new TempDir();
        manual_seed(3);
        using var module = new MiniLmClassifierModule();
        module.eval();
        var (modelFile, configFile) = ModelExport.ExportTriton(module, dir.File("repository"), new TritonOptions { MaxQueueDelayMicroseconds = 1500 });
        Assert.Equal(Path.Combine(dir.File("repository"), "minilm", "1", "model.onnx"), modelFile);
        Assert.Equal(Path.Combine(dir.File("repository"), "minilm", "config.pbtxt"), configFile);
        output.WriteLine(File.ReadAllText(configFile));

        var config = ParseConfig(configFile);
        Assert.Equal("minilm", config.Name);
        Assert.Equal("onnxruntime_onnx", config.Platform);
        Assert.Equal(MiniLmClassifierModule.Buckets.Max(b => b.Batch), config.MaxBatchSize);
        Assert.Equal(MiniLmClassifierModule.Buckets.Select(b => b.Batch).Distinct().Order(), config.DynamicBatching.PreferredBatchSize);
        Assert.Equal(1500UL, config.DynamicBatching.MaxQueueDelayMicroseconds);
        Assert.Equal([1L], config.VersionPolicy.Specific.Versions);

        using var session = new InferenceSession(modelFile);
        // Every ONNX input and output is in the config with its type and its dims after the batch (-1 where symbolic);
        // a [batch] tensor is [1] reshaped to [].
        Assert.Equal(session.InputMetadata.Keys.Order(), config.Input.Select(i => i.Name).Order());
        Assert.Equal(session.OutputMetadata.Keys.Order(), config.Output.Select(o => o.Name).Order());
        foreach (var input in config.Input)
        {
            Check(input.Name, input.DataType, input.Dims, input.Reshape, session.InputMetadata[input.Name]);
        }

        foreach (var o in config.Output)
        {
            Check(o.Name, o.DataType, o.Dims, o.Reshape, session.OutputMetadata[o.Name]);
        }

        // And the model runs at a declared bucket with the config's shapes, giving the config's output dims.
        var bucket = MiniLmClassifierModule.Buckets.OrderBy(b => b.Batch * b.Seq).First();
        var names = config.Input.Select(i => i.Name).ToArray();
        var ids = Enumerable.Range(0, bucket.Batch * bucket.Seq).Select(i => (long)(1000 + (i % 500))).ToArray();
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, [bucket.Batch, bucket.Seq]);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], [bucket.Batch, bucket.Seq]);
        using var lengthsValue = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat((long)bucket.Seq, bucket.Batch).ToArray(), [bucket.Batch]);
        using var results = session.Run(new RunOptions(), names, [idsValue, typesValue, lengthsValue], [config.Output[0].Name]);
        Assert.Equal([bucket.Batch, .. config.Output[0].Dims], results[0].GetTensorTypeAndShape().Shape);
    }

    private static void Check(string name, DataType type, IReadOnlyList<long> dims, ModelTensorReshape? reshape, NodeMetadata onnx)
    {
        var expectedType = onnx.ElementDataType switch
        {
            TensorElementType.Int64 => DataType.TypeInt64,
            TensorElementType.Float => DataType.TypeFp32,
            _ => DataType.TypeInvalid,
        };
        Assert.True(expectedType == type, $"{name}: config {type}, ONNX {onnx.ElementDataType}");
        var onnxDims = onnx.Dimensions.Skip(1).Select(d => (long)d).ToArray();
        if (onnxDims.Length == 0)
        {
            Assert.Equal([1L], dims);
            Assert.NotNull(reshape);
            Assert.Empty(reshape.Shape);
        }
        else
        {
            Assert.True(onnxDims.SequenceEqual(dims), $"{name}: config dims [{string.Join(", ", dims)}], ONNX [{string.Join(", ", onnx.Dimensions)}] after the batch");
        }
    }

    [Fact]
    public void TheKServeManifestsParseAndPointAtTheServersEndpoints()
    {
        var custom = Load(Path.Combine(Repo, "deploy", "kserve", "inferenceservice.yaml"));
        Assert.Equal("serving.kserve.io/v1beta1", Scalar(custom, "apiVersion"));
        Assert.Equal("InferenceService", Scalar(custom, "kind"));
        var predictor = (YamlMappingNode)((YamlMappingNode)custom["spec"])["predictor"];
        var container = (YamlMappingNode)((YamlSequenceNode)predictor["containers"]).Single();
        var args = ((YamlSequenceNode)container["args"]).Select(a => ((YamlScalarNode)a).Value).ToList();
        Assert.Equal("/mnt/models/minilm-int8", args[args.IndexOf("--model") + 1]);
        var port = Scalar((YamlMappingNode)((YamlSequenceNode)container["ports"]).Single(), "containerPort");
        Assert.Equal("8080", port);
        Assert.Equal("/v2/health/ready", Scalar((YamlMappingNode)((YamlMappingNode)container["readinessProbe"])["httpGet"], "path"));
        Assert.Equal("/v2/health/live", Scalar((YamlMappingNode)((YamlMappingNode)container["livenessProbe"])["httpGet"], "path"));
        // The pod is given longer than the server's drain.
        Assert.True(int.Parse(Scalar(predictor, "terminationGracePeriodSeconds")) > 30);

        // The container build file runs the same command on the same port.
        var dockerfile = File.ReadAllText(Path.Combine(Repo, "deploy", "Dockerfile"));
        Assert.Contains("ENTRYPOINT [\"/opt/predict/predict\", \"serve\", \"--port\", \"8080\"]", dockerfile);
        Assert.Contains("EXPOSE 8080", dockerfile);
        Assert.Contains("COPY out/predict/ /opt/predict/", dockerfile);

        var triton = Load(Path.Combine(Repo, "deploy", "kserve", "inferenceservice-triton.yaml"));
        var model = (YamlMappingNode)((YamlMappingNode)((YamlMappingNode)triton["spec"])["predictor"])["model"];
        Assert.Equal("kserve-tritonserver", Scalar(model, "runtime"));
        Assert.Equal("v2", Scalar(model, "protocolVersion"));
        Assert.Equal("onnx", Scalar((YamlMappingNode)model["modelFormat"], "name"));
    }

    private static YamlMappingNode Load(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return (YamlMappingNode)Assert.Single(stream.Documents).RootNode;
    }

    private static string Scalar(YamlMappingNode node, string key) => ((YamlScalarNode)node[key]).Value!;
}
