using GraphCompiler.Generator.Ir;
using GraphCompiler.Generator.Passes;
using GraphCompiler.Tests.Infrastructure;
using Xunit;

namespace GraphCompiler.Tests.Passes;

/// <summary>FileCheck-style goldens: Golden/&lt;pass&gt;/&lt;case&gt;.before.ir is parsed, the one pass runs alone, and the
/// printed result must equal the committed &lt;case&gt;.after.ir. Positive cases must change the graph (and the
/// rewrite must still type-check); negative cases must leave it exactly as it was.</summary>
public class PassGoldenTests
{
    public static IGraphPass Pass(string name) => AllPasses.First(p => p.Name == name);

    /// <summary>Every pass of the named pipelines (inference, calibration, int8), each once.</summary>
    private static IEnumerable<IGraphPass> AllPasses =>
        PassPipeline.Default.Concat(PassPipeline.Calibration).Concat(PassPipeline.Int8).GroupBy(p => p.Name).Select(g => g.First());

    private static string ReadGolden(string relativePath) =>
        File.ReadAllText(Path.Combine(Snapshot.Root, relativePath)).Replace("\r\n", "\n");

    [Theory]
    [InlineData("fold_bias_into_gemm", "linear")]
    [InlineData("pack_qkv", "qkv")]
    [InlineData("pack_qkv", "uneven_outputs")]
    [InlineData("pack_qkv", "f64_weights")]
    [InlineData("fuse_attention", "attention")]
    [InlineData("fuse_attention", "no_dropout")]
    [InlineData("fuse_bias_gelu", "linear_gelu")]
    [InlineData("fuse_add_layer_norm", "residual")]
    [InlineData("merge_slice_grads", "qkv")]
    [InlineData("fuse_softmax_grad", "dropout_scale")]
    [InlineData("fuse_softmax_grad", "dropout_only")]
    [InlineData("eliminate_dead_nodes", "leftovers")]
    [InlineData("insert_observers", "encoder_layer")]
    [InlineData("quantize_int8", "encoder_layer")]
    [InlineData("quantize_int8", "embeddings")]
    [InlineData("requantize_gemm_outputs", "encoder_layer")]
    public void PassFires(string pass, string name)
    {
        var before = IrText.Parse(ReadGolden($"Golden/{pass}/{name}.before.ir"));
        var after = Pass(pass).Run(before);
        var printed = IrText.Print(after);

        Assert.NotEqual(IrText.Print(before), printed);
        Snapshot.Verify(printed, $"Golden/{pass}/{name}.after.ir");

        // The rewrite is type-correct, and dead-node elimination of the result keeps every output defined.
        new InferShapes().Run(after);
        new InferShapes().Run(new EliminateDeadNodes().Run(after));
    }

    [Theory]
    [InlineData("infer_shapes", "all_ops")]
    [InlineData("fold_bias_into_gemm", "matmul_second_use")]
    [InlineData("fold_bias_into_gemm", "bias_not_param")]
    [InlineData("fold_bias_into_gemm", "no_transpose")]
    [InlineData("pack_qkv", "different_inputs")]
    [InlineData("pack_qkv", "sibling_without_bias")]
    [InlineData("pack_qkv", "mixed_init")]
    [InlineData("fuse_attention", "custom_scale")]
    [InlineData("fuse_attention", "probs_second_use")]
    [InlineData("fuse_attention", "dropout_second_use")]
    [InlineData("fuse_bias_gelu", "linear_second_use")]
    [InlineData("fuse_bias_gelu", "gelu_of_matmul")]
    [InlineData("fuse_add_layer_norm", "add_second_use")]
    [InlineData("fuse_add_layer_norm", "broadcast_add")]
    [InlineData("merge_slice_grads", "gap")]
    [InlineData("merge_slice_grads", "inner_second_use")]
    [InlineData("fuse_softmax_grad", "mul_second_use")]
    [InlineData("fuse_softmax_grad", "broadcast_mul")]
    [InlineData("eliminate_dead_nodes", "all_live")]
    [InlineData("insert_observers", "nothing_to_quantize")]
    [InlineData("quantize_int8", "nothing_to_quantize")]
    [InlineData("requantize_gemm_outputs", "nothing_to_quantize")]
    public void PassDoesNotFire(string pass, string name)
    {
        var text = ReadGolden($"Golden/{pass}/{name}.before.ir");
        var before = IrText.Parse(text);
        var after = Pass(pass).Run(before);
        var printed = IrText.Print(after);

        Assert.Equal(before, after);
        Assert.Equal(text, printed);
        Snapshot.Verify(printed, $"Golden/{pass}/{name}.after.ir");
    }

    [Theory]
    [InlineData("wrong_type")]
    [InlineData("use_before_definition")]
    [InlineData("shape_mismatch")]
    public void InferShapesRejects(string name)
    {
        var before = IrText.Parse(ReadGolden($"Golden/infer_shapes/{name}.before.ir"));
        var ex = Assert.Throws<InvalidOperationException>(() => new InferShapes().Run(before));
        Assert.StartsWith("infer_shapes: ", ex.Message);
        Snapshot.Verify(ex.Message + "\n", $"Golden/infer_shapes/{name}.error.txt");
    }

    /// <summary>Every case a golden test names has its committed before and expected files, and every committed
    /// file belongs to a case (no stale goldens).</summary>
    [Fact]
    public void EveryGoldenFileBelongsToACase()
    {
        var root = Path.Combine(Snapshot.Root, "Golden");
        var files = Directory.GetFiles(root, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
            .Where(f => !f.Contains(".received"))
            .OrderBy(f => f, StringComparer.Ordinal)
            .ToList();

        var expected = new List<string>();
        foreach (var (pass, name) in Cases(nameof(PassFires)).Concat(Cases(nameof(PassDoesNotFire))))
        {
            expected.Add($"{pass}/{name}.before.ir");
            expected.Add($"{pass}/{name}.after.ir");
        }

        foreach (var (name, _) in Cases(nameof(InferShapesRejects)))
        {
            expected.Add($"infer_shapes/{name}.before.ir");
            expected.Add($"infer_shapes/{name}.error.txt");
        }

        foreach (var model in PipelineGoldenTests.Models)
        {
            expected.Add($"pipeline/{model}.lowered.ir");
            expected.Add($"pipeline/{model}.optimized.ir");
        }

        foreach (var name in AutodiffGoldenTests.Cases)
        {
            expected.Add($"autodiff/{name}.forward.ir");
            expected.Add($"autodiff/{name}.backward.txt");
        }

        expected.Add("explicit_dropout_masks/dropout.before.ir");
        expected.Add("explicit_dropout_masks/dropout.after.ir");

        Assert.Equal(expected.OrderBy(f => f, StringComparer.Ordinal), files);
        foreach (var pass in AllPasses.Select(p => p.Name))
        {
            Assert.Contains(Cases(nameof(PassDoesNotFire)), c => c.Item1 == pass);
            if (pass != "infer_shapes")
            {
                Assert.Contains(Cases(nameof(PassFires)), c => c.Item1 == pass);
            }
        }
    }

    public static TheoryData<string> GoldenIrFiles()
    {
        var data = new TheoryData<string>();
        var root = Path.Combine(Snapshot.Root, "Golden");
        foreach (var file in Directory.GetFiles(root, "*.ir", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal))
        {
            data.Add(Path.GetRelativePath(Snapshot.Root, file).Replace('\\', '/'));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(GoldenIrFiles))]
    public void GoldenIrRoundTrips(string relativePath)
    {
        var text = ReadGolden(relativePath);
        var graph = IrText.Parse(text);
        Assert.Equal(text, IrText.Print(graph));
        Assert.Equal(graph, IrText.Parse(IrText.Print(graph)));
    }

    private static IEnumerable<(string, string)> Cases(string method) =>
        typeof(PassGoldenTests).GetMethod(method)!
            .GetCustomAttributes(typeof(InlineDataAttribute), false)
            .Cast<InlineDataAttribute>()
            .Select(a => a.GetData(null!).Single())
            .Select(args => ((string)args[0], args.Length > 1 ? (string)args[1] : ""));
}
