using BenchmarkDotNet.Running;
using GraphCompiler.Benchmarks.Micro;

// Usage: dotnet run -c Release --project Tests/GraphCompiler.Benchmarks.Micro -- [BenchmarkDotNet options, e.g. --filter '*Attention*' --job short]
// With no options every benchmark runs (BenchmarkDotNet's default job); results land in BenchmarkDotNet.Artifacts/.
var switcher = BenchmarkSwitcher.FromTypes(new[] { typeof(LinearBenchmarks), typeof(AddLayerNormBenchmarks), typeof(AttentionBenchmarks) });
switcher.Run(args.Length == 0 ? new[] { "--filter", "*" } : args);
