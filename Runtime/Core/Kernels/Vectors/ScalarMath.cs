using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace GraphCompiler.Runtime;

/// <summary>The scalar twins of <see cref="IFloatVector{TSelf}"/>'s arithmetic, for the tails of the vector loops.</summary>
internal static class ScalarMath
{
    /// <summary>Whether <see cref="MultiplyAdd"/> and every <see cref="IFloatVector{TSelf}.MultiplyAdd"/> fuse (folded to a
    /// constant by the JIT).</summary>
    public static bool FusedMultiplyAdd => Fma.IsSupported || AdvSimd.IsSupported;

    /// <summary>a·b + c with the same rounding as the vector lanes: fused where the CPU has FMA.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MultiplyAdd(float a, float b, float c) => FusedMultiplyAdd ? MathF.FusedMultiplyAdd(a, b, c) : (a * b) + c;
}
