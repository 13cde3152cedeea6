using GraphCompiler.Runtime;
using Xunit;

namespace GraphCompiler.Tests.Runtime;

public sealed class CpuParallelTests
{
    /// <summary>On Linux x64 libtorch brings libgomp: the loops must run on its team, not fall back silently.</summary>
    [Fact]
    public void RunsOnLibtorchsOpenMpTeamOnLinux()
    {
        if (OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("GRAPHCOMPILER_CPU_THREADS") is null)
        {
            Assert.StartsWith("libtorch's OpenMP team", CpuParallel.Description);
        }
    }

    /// <summary>Every index once, in aligned pieces, across several threads when the job is large enough.</summary>
    [Theory]
    [InlineData(1_000_003L, 64L)]
    [InlineData(70_000L, 1L)]
    [InlineData(100L, 1L)]
    public void CoversEveryIndexExactlyOnce(long count, long align)
    {
        // Warm-up: a team thread's first call into .NET attaches it to the runtime, slower than a small piece.
        CpuParallel.For(1 << 20, 1, (_, _) => Thread.Sleep(5));
        var hits = new int[count];
        var threads = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
        CpuParallel.For(count, align, (start, end) =>
        {
            Assert.True(start % align == 0, $"piece starts at {start}");
            threads[Environment.CurrentManagedThreadId] = true;
            Thread.Sleep(5); // long enough that the whole team joins in
            for (var i = start; i < end; i++)
            {
                Interlocked.Increment(ref hits[i]);
            }
        });
        Assert.All(hits, h => Assert.Equal(1, h));
        // On the OpenMP team every thread joins; the thread-pool fallback may find no free worker under a test runner.
        if (count >= CpuParallel.Threshold && TorchSharp.torch.get_num_threads() > 1 && CpuParallel.Description.StartsWith("libtorch's OpenMP team", StringComparison.Ordinal))
        {
            Assert.True(threads.Count > 1, "a large job should use more than one thread");
        }
    }

    /// <summary>An exception in a piece (on a team thread) reaches the caller as itself and never unwinds through
    /// native code.</summary>
    [Fact]
    public void AnExceptionInAPieceReachesTheCaller()
    {
        var error = Assert.Throws<InvalidOperationException>(() => CpuParallel.For(1 << 20, 1, (start, _) =>
        {
            if (start > 0)
            {
                throw new InvalidOperationException("piece failed");
            }
        }));
        Assert.Equal("piece failed", error.Message);
    }
}
