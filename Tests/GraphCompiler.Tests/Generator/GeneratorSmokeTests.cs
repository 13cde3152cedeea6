using GraphCompiler.Tests.Infrastructure;
using Xunit;

namespace GraphCompiler.Tests.Generator;

public class GeneratorSmokeTests
{
    [Fact]
    public void SmallMlpCompilesWithoutDiagnostics()
    {
        var (result, output) = GeneratorHarness.Run(GeneratorHarness.Usings + """
            [Model("mlp")]
            [StaticShapes(Batch = 4, SeqLens = new[] { 8 })]
            public partial class Mlp
            {
                [Forward]
                public Expr Forward([Input(DType.Float32, "batch", "seq", "16")] Expr x) =>
                    Linear(Gelu(Linear(x, 16, 32, "fc1")), 32, 4, "fc2");
            }
            """);

        Assert.Empty(GeneratorHarness.GeneratorDiagnostics(result));
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        Assert.Single(GeneratorHarness.ModuleTrees(result));
    }
}
