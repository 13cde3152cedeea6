using System.Reflection;
using BenchmarkDotNet.Attributes;
using GraphCompiler.Benchmarks.Micro;
using Xunit;

namespace GraphCompiler.Tests.Benchmarks;

/// <summary>Every BenchmarkDotNet micro-benchmark's setup, body and cleanup, called once directly (BenchmarkDotNet itself
/// builds and runs a separate process per benchmark, too slow for tests): so the micro project never rots.</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
public class MicroBenchmarkSmokeTests
{
    public static TheoryData<string> Classes() => new() { nameof(LinearBenchmarks), nameof(AddLayerNormBenchmarks), nameof(AttentionBenchmarks) };

    [Theory]
    [MemberData(nameof(Classes))]
    public void EveryBenchmarkRunsOnce(string className)
    {
        var type = typeof(LinearBenchmarks).Assembly.GetType("GraphCompiler.Benchmarks.Micro." + className, throwOnError: true)!;
        var benchmarks = type.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null).ToList();
        Assert.NotEmpty(benchmarks);
        var parameters = type.GetProperties().SingleOrDefault(p => p.GetCustomAttribute<ParamsAttribute>() is not null);
        var values = parameters?.GetCustomAttribute<ParamsAttribute>()!.Values ?? new object?[] { null };
        foreach (var value in values)
        {
            var instance = Activator.CreateInstance(type)!;
            parameters?.SetValue(instance, value);
            Method<GlobalSetupAttribute>(type).Invoke(instance, null);
            foreach (var benchmark in benchmarks)
            {
                benchmark.Invoke(instance, null);
            }

            Method<GlobalCleanupAttribute>(type).Invoke(instance, null);
        }
    }

    private static MethodInfo Method<TAttribute>(Type type)
        where TAttribute : Attribute => type.GetMethods().Single(m => m.GetCustomAttribute<TAttribute>() is not null);
}
