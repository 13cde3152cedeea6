using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>Parallel loops for the hand-written CPU kernels, run on libtorch's own OpenMP thread team (through
/// libgomp's <c>GOMP_parallel</c>, the call a <c>#pragma omp parallel</c> compiles to). After each libtorch op its
/// OpenMP workers spin for a while before sleeping; .NET thread-pool workers started in that window fight them for the
/// same cores, and a loop between two GEMMs then ran at half speed or worse (measured: 2× swings in the int8 forward).
/// On the same team there is nobody to fight. Without libgomp (another OpenMP runtime, another platform) the loops
/// fall back to <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/>.</summary>
internal static unsafe class CpuParallel
{
    /// <summary>Below this much work (elements × their cost) a second thread costs more than it saves.</summary>
    public const long Threshold = 1 << 16;

    private static readonly Lazy<Team> OpenMp = new(Resolve, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Where the OpenMP entry points were found, or why the thread pool is used.</summary>
    public static string Description => OpenMp.Value.Description;

    /// <summary>Runs <paramref name="body"/>(start, end) over [0, count) in torch's thread count of pieces, each a multiple
    /// of <paramref name="align"/> long (except the last); jobs under <see cref="Threshold"/> (count × work) run on the
    /// calling thread. An exception in a piece is rethrown here after every piece ended.</summary>
    public static void For(long count, long align, Action<long, long> body, long work = 1)
    {
        var threads = Math.Max(1, get_num_threads());
        if (threads == 1 || count * work < Threshold)
        {
            body(0, count);
            return;
        }

        var piece = (count + threads - 1) / threads;
        piece = (piece + align - 1) / align * align;
        var pieces = (int)((count + piece - 1) / piece);
        Run(pieces, Math.Min(threads, pieces), p => body(p * piece, Math.Min(count, (p + 1) * piece)));
    }

    /// <summary>Work units [0, pieces) on a team of <paramref name="threads"/> (or the thread pool without one); the
    /// first exception of any piece is rethrown here once all have ended.</summary>
    private static void Run(int pieces, int threads, Action<int> piece)
    {
        var job = new Job(pieces, piece);
        var team = OpenMp.Value;
        if (team.Parallel == null)
        {
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ => job.Drain());
        }
        else
        {
            var handle = GCHandle.Alloc(job);
            try
            {
                team.Parallel(&Entry, GCHandle.ToIntPtr(handle), (uint)threads, 0);
            }
            finally
            {
                handle.Free();
            }

            // A team smaller than asked for (nested in another parallel region, or a thread limit) leaves pieces over.
            job.Drain();
        }

        job.Error?.Throw();
    }

    /// <summary>Runs <paramref name="body"/>(i) for every i in [0, count), one item per work unit, so a thread slowed by
    /// other work on a shared machine takes fewer of them; on the calling thread alone when torch has one thread.</summary>
    public static void ForEach(int count, Action<int> body)
    {
        var threads = Math.Max(1, get_num_threads());
        if (threads == 1 || count <= 1)
        {
            for (var i = 0; i < count; i++)
            {
                body(i);
            }

            return;
        }

        Run(count, Math.Min(threads, count), body);
    }

    /// <summary>Runs on each team thread: pieces are taken from a shared counter, so a team of any size covers them.</summary>
    [UnmanagedCallersOnly]
    private static void Entry(IntPtr data)
    {
        ((Job)GCHandle.FromIntPtr(data).Target!).Drain();
    }

    private sealed class Job(int pieces, Action<int> piece)
    {
        private int _next;

        public ExceptionDispatchInfo? Error;

        /// <summary>Runs pieces taken from the shared counter until none is left.</summary>
        public void Drain()
        {
            for (var p = Interlocked.Increment(ref _next) - 1; p < pieces; p = Interlocked.Increment(ref _next) - 1)
            {
                Run(p);
            }
        }

        /// <summary>Never lets an exception unwind into native frames: the first one is kept for the caller.</summary>
        private void Run(int p)
        {
            try
            {
                piece(p);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref Error, ExceptionDispatchInfo.Capture(e), null);
            }
        }
    }

    private readonly struct Team(delegate* unmanaged<delegate* unmanaged<IntPtr, void>, IntPtr, uint, uint, void> parallel, string description)
    {
        public readonly delegate* unmanaged<delegate* unmanaged<IntPtr, void>, IntPtr, uint, uint, void> Parallel = parallel;
        public readonly string Description = description;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Team Resolve()
    {
        if (Environment.GetEnvironmentVariable("GRAPHCOMPILER_CPU_THREADS") == "dotnet")
        {
            return new Team(null, "the .NET thread pool (GRAPHCOMPILER_CPU_THREADS=dotnet)");
        }

        var (address, where) = Int8Gemm.FindLibTorchExport("GOMP_parallel");
        return address == IntPtr.Zero
            ? new Team(null, "the .NET thread pool (no GOMP_parallel: " + where + ")")
            : new Team((delegate* unmanaged<delegate* unmanaged<IntPtr, void>, IntPtr, uint, uint, void>)address, "libtorch's OpenMP team (GOMP_parallel via " + where + ")");
    }
}
