using System.Runtime.Intrinsics;

namespace GraphCompiler.Runtime;

/// <summary>A loop body written once against <see cref="IFloatVector{TSelf}"/>; <see cref="VectorWidth.Run{TKernel}(ref TKernel, int)"/>
/// calls it at the width this CPU runs.</summary>
internal interface IVectorKernel
{
    void Run<TV>()
        where TV : struct, IFloatVector<TV>;
}

/// <summary>The one place that decides how wide the hand-written CPU loops run: the widest vector the runtime
/// accelerates (512 bits with AVX-512, 256 with AVX2, 128 with SSE or NEON), 0 when it accelerates none (then the
/// kernels' torch compositions run instead). It follows the runtime's own switches, so <c>DOTNET_EnableAVX512=0</c>,
/// <c>DOTNET_EnableAVX2=0</c> or <c>DOTNET_EnableHWIntrinsic=0</c> force the lower levels on any host (tests run every
/// level that way), and <c>DOTNET_PreferredVectorBitWidth=256</c> keeps 512-bit CPUs that downclock on it at 256.
/// Kernels read <see cref="Current"/> once on the calling thread and hand it to their parallel pieces.</summary>
internal static class VectorWidth
{
    /// <summary>This thread's forced width plus one (0: none), see <see cref="Force"/>.</summary>
    [ThreadStatic]
    private static int _forced;

    /// <summary>Bits per vector the CPU and runtime accelerate: 512, 256, 128 or 0.</summary>
    public static int Bits { get; } =
        Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : Vector128.IsHardwareAccelerated ? 128 : 0;

    /// <summary>The width kernels called from this thread run at: <see cref="Bits"/>, unless a test forced another.</summary>
    public static int Current => _forced != 0 ? _forced - 1 : Bits;

    /// <summary>Whether the vector loops run at all at <see cref="Current"/> (else callers take their torch
    /// compositions).</summary>
    public static bool IsAccelerated => Current != 0;

    /// <summary>Float lanes per vector at <paramref name="bits"/> (4 when unaccelerated, for callers that size work by
    /// it).</summary>
    public static int FloatLanes(int bits) => Math.Max(128, bits) / 32;

    /// <summary>Makes kernels called from this thread run at <paramref name="bits"/> (512, 256, 128, or 0 for the torch
    /// compositions) until the result is disposed: tests check every width on any host this way (a width the CPU
    /// lacks is emulated by the runtime, slowly but exactly).</summary>
    public static IDisposable Force(int bits)
    {
        if (bits is not (0 or 128 or 256 or 512))
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "vector width must be 0, 128, 256 or 512 bits");
        }

        var previous = _forced;
        _forced = bits + 1;
        return new Restore(previous);
    }

    /// <summary>Runs <paramref name="kernel"/> at <paramref name="bits"/> (128, 256 or 512).</summary>
    public static void Run<TKernel>(ref TKernel kernel, int bits)
        where TKernel : struct, IVectorKernel
    {
        switch (bits)
        {
            case 512:
                kernel.Run<Float512>();
                break;
            case 256:
                kernel.Run<Float256>();
                break;
            case 128:
                kernel.Run<Float128>();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(bits), bits, "vector width must be 128, 256 or 512 bits");
        }
    }

    private sealed class Restore(int previous) : IDisposable
    {
        public void Dispose() => _forced = previous;
    }
}
