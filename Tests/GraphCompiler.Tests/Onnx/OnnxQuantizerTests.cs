using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Onnx;
using GraphCompiler.Runtime.Weights;
using GraphCompiler.Tests.Declarations;
using GraphCompiler.Tests.Runtime;
using GraphCompiler.Tests.Weights;
using TorchSharp;
using Tensor = TorchSharp.torch.Tensor;
using Xunit;
using Xunit.Abstractions;
using static GraphCompiler.Tests.Onnx.OnnxTestKit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Onnx;

/// <summary>The ORT dynamically quantized peer: the package's MiniLM and our own exports, rewritten, still run and stay
/// close to fp32; the rewrite keeps what it does not touch.</summary>
[Collection(TorchRngCollection.Name)]
public sealed class OnnxQuantizerTests(ITestOutputHelper output)
{
    /// <summary>Per tensor (quantize_dynamic's default) and per channel. Bounds are the measured values with margin:
    /// per tensor loses more (one scale for a whole weight with outliers), per channel stays within 1–2 %.</summary>
    [Fact]
    public void Quantize_MiniLmPackageModel_FourTimesSmallerAndCloseToFp32OnMrpcDev()
    {
        using var dir = new TempDir();
        var fp32 = dir.Write("minilm.onnx", MiniLmPackage.Read(MiniLmPackage.ModelResource));
        using var zoo = ModelZoo.GetModel("minilm_encoder");
        var (ids, types, lengths) = OnnxExportTests.MrpcBatch(zoo, skip: 32, seq: 128);
        using var scope = NewDisposeScope();
        var mask = (arange(128).unsqueeze(0) < lengths.unsqueeze(1)).to(ScalarType.Int64);
        var inputs = new[] { ("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types) };
        Dictionary<string, Tensor> reference;
        using (var fp32Session = Session(fp32))
        {
            reference = Run(fp32Session, inputs);
        }

        var before = OnnxModelReader.Read(fp32);
        var valid = mask.unsqueeze(-1).to(ScalarType.Bool);
        var pooledName = reference.Keys.Single(k => k != "last_hidden_state");
        foreach (var (perChannel, minHiddenCosine, minPooledCosine) in new[] { (false, 0.93, 0.97), (true, 0.98, 0.99) })
        {
            var int8 = dir.File($"minilm.int8.{perChannel}.onnx");
            var report = OnnxDynamicQuantizer.Quantize(fp32, int8, new OnnxQuantizeOptions { PerChannel = perChannel });
            var ratio = (double)report.InputBytes / report.OutputBytes;
            var mode = perChannel ? "per channel" : "per tensor";
            output.WriteLine($"{mode}: {report.MatMulsQuantized} MatMuls and {report.GathersQuantized} Gathers quantized ({report.WeightsQuantized} weights): " +
                             $"{report.InputBytes:N0} → {report.OutputBytes:N0} bytes, {ratio:F2}× smaller");
            Assert.Equal(36, report.MatMulsQuantized); // 6 layers × (q, k, v, attention output, intermediate, output)
            Assert.True(ratio is > 3.6 and < 4.1, $"int8 file is {ratio:F2}× smaller, expected ≈ 4×");

            // Fields the rewrite does not touch are kept: producer, opsets, the graph's inputs, outputs and value infos.
            var after = OnnxModelReader.Read(int8);
            Assert.Equal(before.Model.Fields.Select(f => f.Number), after.Model.Fields.Select(f => f.Number));
            Assert.Equal(before.Model.String(OnnxFields.ModelProducerName), after.Model.String(OnnxFields.ModelProducerName));
            Assert.Equal(before.Opsets, after.Opsets);
            Assert.Equal(before.InputNames, after.InputNames);
            Assert.Equal(before.OutputNames, after.OutputNames);
            Assert.Equal(before.Graph.All(OnnxFields.GraphValueInfo).Count(), after.Graph.All(OnnxFields.GraphValueInfo).Count());
            Assert.DoesNotContain(after.Nodes, n => n.OpType == "MatMul" && after.Initializers.Any(i => i.Name == n.Inputs[1]));

            using var int8Session = Session(int8);
            var quantized = Run(int8Session, inputs);
            var hiddenRef = reference["last_hidden_state"].masked_select(valid);
            var hiddenQ = quantized["last_hidden_state"].masked_select(valid);
            var hiddenDiff = MaxAbsDiff(hiddenRef, hiddenQ);
            var hiddenCos = Cosine(hiddenRef, hiddenQ);
            var pooledDiff = MaxAbsDiff(reference[pooledName], quantized[pooledName]);
            var pooledCos = Cosine(reference[pooledName], quantized[pooledName]);
            output.WriteLine($"  int8 vs fp32, 32 MRPC dev pairs at 32×128: last_hidden_state (real tokens) max |Δ| {hiddenDiff:F4}, cosine {hiddenCos:F5} " +
                             $"(values up to {hiddenRef.abs().max().item<double>():F2}); pooled output '{pooledName}' max |Δ| {pooledDiff:F4}, cosine {pooledCos:F5}");
            Assert.True(hiddenCos >= minHiddenCosine && pooledCos >= minPooledCosine,
                $"{mode} int8 drifted from fp32: cosines {hiddenCos:F5} / {pooledCos:F5} below {minHiddenCosine} / {minPooledCosine}");
            Assert.True(hiddenDiff <= 2.0 && pooledDiff <= 0.25, $"{mode} int8 drifted from fp32: max |Δ| {hiddenDiff:F4} / {pooledDiff:F4}");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Quantize_OurExport_RunsAndStaysCloseToFp32(bool perChannel)
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        manual_seed(3);
        using var module = new EncoderModelModule();
        module.eval();
        var symbol = FromModule(module);
        var fp32 = dir.File("encoder.onnx");
        OnnxExport.Export(symbol, Parameters(module), fp32);
        var int8 = dir.File("encoder.int8.onnx");
        var report = OnnxDynamicQuantizer.Quantize(fp32, int8, new OnnxQuantizeOptions { PerChannel = perChannel });
        output.WriteLine($"per channel {perChannel}: {report.MatMulsQuantized} MatMuls, {report.GathersQuantized} Gathers; {report.InputBytes:N0} → {report.OutputBytes:N0} bytes");
        // Every linear (written as MatMul(x, Transpose(W))) is quantized; attention's activation × activation MatMuls are not.
        Assert.Equal(symbol.Nodes.Count(n => n.Op is "linear" or "linear_gelu"), report.MatMulsQuantized);
        var rewritten = OnnxModelReader.Read(int8);
        Assert.DoesNotContain(rewritten.Nodes, n => n.OpType == "Transpose" && rewritten.Initializers.Any(i => i.Name == n.Inputs[0]));
        Assert.DoesNotContain(rewritten.Initializers, i => i.DataType == OnnxDataType.Float && i.Name.EndsWith(".weight", StringComparison.Ordinal) && i.Dims.Length == 2);

        var x = randn(2, 8, 16);
        var lengths = tensor(new long[] { 8, 5 });
        var inputs = new[] { ("x", x), ("validLength", lengths) };
        using var fp32Session = Session(fp32);
        using var int8Session = Session(int8);
        var reference = Run(fp32Session, inputs)["output"];
        var quantized = Run(int8Session, inputs)["output"];
        var cos = Cosine(reference, quantized);
        output.WriteLine($"max |Δ| {MaxAbsDiff(reference, quantized):F4}, cosine {cos:F5}");
        Assert.True(cos >= 0.99, $"cosine {cos:F5} < 0.99");
    }

    /// <summary>Fields the quantizer does not know (in the model, the graph and an untouched node) come out unchanged,
    /// and the rewritten model still runs.</summary>
    [Fact]
    public void Quantize_KeepsUnknownFieldsAndUntouchedNodesByteForByte()
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        manual_seed(4);
        var weight = randn(4, 3);
        var relu = new OnnxNodeProto("Relu", new[] { "y" }, new[] { "z" }, "relu", Array.Empty<OnnxAttribute>());
        var graph = ProtoWriter.Encode(o =>
        {
            ProtoWriter.Message(o, OnnxFields.GraphNode, new OnnxNodeProto("MatMul", new[] { "x", "w" }, new[] { "y" }, "fc", Array.Empty<OnnxAttribute>()).WriteTo);
            ProtoWriter.Message(o, OnnxFields.GraphNode, n =>
            {
                relu.WriteTo(n);
                ProtoWriter.String(n, 50, "node extension"); // not in onnx.proto
            });
            ProtoWriter.String(o, OnnxFields.GraphName, "g");
            ProtoWriter.Message(o, OnnxFields.GraphInitializer, OnnxTensorProto.Of<float>("w", OnnxDataType.Float, new long[] { 4, 3 }, weight.data<float>().ToArray()).WriteTo);
            ProtoWriter.Message(o, OnnxFields.GraphInput, new OnnxValueInfo("x", OnnxDataType.Float, new[] { "batch", "4" }).WriteTo);
            ProtoWriter.Message(o, OnnxFields.GraphOutput, new OnnxValueInfo("z", OnnxDataType.Float, new[] { "batch", "3" }).WriteTo);
            ProtoWriter.String(o, 77, "graph extension");
        });
        var model = ProtoWriter.Encode(o =>
        {
            ProtoWriter.Int64(o, OnnxFields.ModelIrVersion, 8);
            ProtoWriter.Bytes(o, OnnxFields.ModelGraph, graph);
            ProtoWriter.Message(o, OnnxFields.ModelOpsetImport, opset => ProtoWriter.Int64(opset, OnnxFields.OpsetVersion, 17));
            ProtoWriter.Message(o, 14, entry => // metadata_props
            {
                ProtoWriter.String(entry, 1, "author");
                ProtoWriter.String(entry, 2, "tests");
            });
            ProtoWriter.Int64(o, 99, 42);
        });
        var fp32 = dir.Write("tiny.onnx", model);
        var int8 = dir.File("tiny.int8.onnx");
        var report = OnnxDynamicQuantizer.Quantize(fp32, int8);
        Assert.Equal(1, report.MatMulsQuantized);

        var before = OnnxModelReader.Read(fp32);
        var after = OnnxModelReader.Read(int8);
        Assert.Equal(42UL, after.Model.First(99)!.Value.Scalar);
        Assert.Equal(before.Model.First(14)!.Value.Payload.ToArray(), after.Model.First(14)!.Value.Payload.ToArray());
        Assert.Equal("graph extension", after.Graph.String(77));
        var reluBefore = before.Nodes.Single(n => n.OpType == "Relu").Field.Payload.ToArray();
        var reluAfter = after.Nodes.Single(n => n.OpType == "Relu").Field.Payload.ToArray();
        Assert.Equal(reluBefore, reluAfter);
        Assert.DoesNotContain(after.Initializers, i => i.Name == "w");

        var x = randn(5, 4);
        using var fp32Session = Session(fp32);
        using var int8Session = Session(int8);
        var cos = Cosine(Run(fp32Session, new[] { ("x", x) })["z"], Run(int8Session, new[] { ("x", x) })["z"]);
        Assert.True(cos >= 0.99, $"cosine {cos:F5} < 0.99");
    }

    [Fact]
    public void Quantize_FileThatIsNotOnnx_ErrorNamesTheFile()
    {
        using var dir = new TempDir();
        var path = dir.Write("notes.onnx", System.Text.Encoding.UTF8.GetBytes("this is a text file, not a model\n"));
        var error = Assert.Throws<WeightFileException>(() => OnnxDynamicQuantizer.Quantize(path, dir.File("out.onnx")));
        output.WriteLine(error.Message);
        Assert.Contains(path, error.Message);
        Assert.Contains("not an ONNX model", error.Message);
        Assert.False(File.Exists(dir.File("out.onnx")));
    }
}
