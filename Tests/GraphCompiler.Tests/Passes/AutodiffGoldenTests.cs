using GraphCompiler.Generator.Ir;
using GraphCompiler.Registry;
using GraphCompiler.Generator.Passes;
using GraphCompiler.Tests.Infrastructure;
using Xunit;

namespace GraphCompiler.Tests.Passes;

/// <summary>Goldens of the training passes: Golden/autodiff/&lt;case&gt;.forward.ir differentiated gives the committed
/// .backward.txt (the backward graph, its gradient targets and the values the forward must save);
/// explicit_dropout_masks before/after.</summary>
public class AutodiffGoldenTests
{
    private static string Read(string relativePath) => File.ReadAllText(Path.Combine(Snapshot.Root, relativePath)).Replace("\r\n", "\n");

    public static readonly string[] Cases = { "mlp", "broadcast_views", "embeddings" };

    public static TheoryData<string> CaseNames() => new(Cases);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void BackwardGraphMatchesGolden(string name)
    {
        var forward = IrText.Parse(Read($"Golden/autodiff/{name}.forward.ir"));
        var backward = Autodiff.Differentiate(forward);
        new InferShapes().Run(backward.Graph);
        var text = IrText.Print(backward.Graph)
                   + "targets: " + string.Join(", ", backward.Targets.Select(t => "%" + t)) + "\n"
                   + "saved: " + string.Join(", ", backward.SavedValues.Select(t => "%" + t)) + "\n";
        Snapshot.Verify(text, $"Golden/autodiff/{name}.backward.txt");

        // Every parameter gets a gradient of its own shape.
        foreach (var (target, i) in backward.Targets.Select((t, i) => (t, i)))
        {
            Assert.Equal(forward[target].Type, backward.Graph[backward.Graph.Outputs[i]].Type);
        }
    }

    [Fact]
    public void IntegerInputsAndMasksGetNoGradient()
    {
        var forward = IrText.Parse(Read("Golden/autodiff/embeddings.forward.ir"));
        var backward = Autodiff.Differentiate(forward);
        Assert.DoesNotContain(0, backward.Targets); // ids
        Assert.Equal(new[] { 1, 3, 6, 7 }, backward.Targets.ToArray());
    }

    [Fact]
    public void ExplicitDropoutMasksMakeTheMaskAValue()
    {
        var before = IrText.Parse(Read("Golden/explicit_dropout_masks/dropout.before.ir"));
        var after = new ExplicitDropoutMasks().Run(before);
        new InferShapes().Run(after);
        Snapshot.Verify(IrText.Print(after), "Golden/explicit_dropout_masks/dropout.after.ir");
        var backward = Autodiff.Differentiate(after);
        Assert.Contains(after.Nodes.First(n => n.Op == OpNames.DropoutMask).Id, backward.SavedValues);
    }
}
