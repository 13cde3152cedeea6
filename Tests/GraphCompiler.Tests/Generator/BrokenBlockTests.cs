using GraphCompiler.Tests.Infrastructure;
using Xunit;

namespace GraphCompiler.Tests.Generator;

/// <summary>A model that reaches a broken block only through another block is not compiled either: the block's own
/// diagnostic explains the error, and the model says which block it applies has errors.</summary>
public class BrokenBlockTests
{
    [Fact]
    public void BrokenBlockAppliedThroughAnotherBlockStopsTheModel()
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Usings + """
            [Block]
            public partial class Inner
            {
                [Forward]
                public Expr Forward(Expr x)
                {
                    for (;;) { }
                }
            }

            [Block]
            public partial class Outer
            {
                [Forward]
                public Expr Forward(Expr x) => Apply("inner", new Inner(), x);
            }

            [Model("nested")]
            [StaticShapes(Batch = 2, SeqLens = new[] { 4 })]
            public partial class Nested
            {
                [Forward]
                public Expr Forward([Input(DType.Float32, "batch", "seq", "8")] Expr x) => Apply("outer", new Outer(), x);
            }
            """);

        var ids = GeneratorHarness.GeneratorDiagnostics(result).Select(d => d.Id).ToList();
        Assert.Contains("GC0001", ids);
        var modelError = Assert.Single(GeneratorHarness.GeneratorDiagnostics(result), d => d.Id == "GC0007");
        Assert.Contains("block 'Inner' it applies has errors", modelError.GetMessage());
        Assert.Equal("Nested", GeneratorHarness.LocatedText(modelError));
        Assert.DoesNotContain("GC9999", ids);
        Assert.Empty(result.GeneratedTrees);
        Assert.All(result.Results, r => Assert.Null(r.Exception));
    }
}
