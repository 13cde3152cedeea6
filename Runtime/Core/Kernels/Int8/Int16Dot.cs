using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GraphCompiler.Runtime;

/// <summary>The one instruction <see cref="PackedInt8Gemm"/>'s inner loop is built on, per ISA: int32 lanes each
/// accumulating the dot product of a pair of int16 (two int8 operands widened, so every sum is exact; int8 × int8 in
/// bytes has no exact single instruction without VNNI: vpmaddubsw saturates its int16 pair sums). The rest of the
/// kernel is written once over these members.</summary>
internal unsafe interface IInt16Dot<TShort, TInt>
    where TShort : struct
    where TInt : struct
{
    /// <summary>Whether this CPU (and the runtime's switches) has the instruction.</summary>
    static abstract bool IsSupported { get; }

    /// <summary>int32 lanes per accumulator (the kernel's panel is two accumulators wide).</summary>
    static abstract int Lanes { get; }

    static abstract TShort Load(short* source);

    /// <summary>One (int16, int16) pair, read as an int32, in every lane.</summary>
    static abstract TShort BroadcastPair(int* pair);

    /// <summary>acc[i] + a[2i]·b[2i] + a[2i+1]·b[2i+1] for each int32 lane i.</summary>
    static abstract TInt DotAdd(TInt acc, TShort a, TShort b);

    static abstract void Store(TInt value, int* target);
}

/// <summary>SSE2 pmaddwd + paddd (128-bit).</summary>
internal readonly unsafe struct Sse2Dot : IInt16Dot<Vector128<short>, Vector128<int>>
{
    public static bool IsSupported => Sse2.IsSupported;

    public static int Lanes => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<short> Load(short* source) => Vector128.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<short> BroadcastPair(int* pair) => Vector128.Create(*pair).AsInt16();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotAdd(Vector128<int> acc, Vector128<short> a, Vector128<short> b) => acc + Sse2.MultiplyAddAdjacent(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<int> value, int* target) => value.Store(target);
}

/// <summary>AVX2 vpmaddwd + vpaddd (256-bit).</summary>
internal readonly unsafe struct Avx2Dot : IInt16Dot<Vector256<short>, Vector256<int>>
{
    public static bool IsSupported => Avx2.IsSupported;

    public static int Lanes => 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Load(short* source) => Vector256.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> BroadcastPair(int* pair) => Vector256.Create(*pair).AsInt16();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotAdd(Vector256<int> acc, Vector256<short> a, Vector256<short> b) => acc + Avx2.MultiplyAddAdjacent(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<int> value, int* target) => value.Store(target);
}

/// <summary>AVX-VNNI vpdpwssd (256-bit): the multiply and the add in one instruction.</summary>
internal readonly unsafe struct AvxVnniDot : IInt16Dot<Vector256<short>, Vector256<int>>
{
    public static bool IsSupported => AvxVnni.IsSupported;

    public static int Lanes => 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Load(short* source) => Vector256.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> BroadcastPair(int* pair) => Vector256.Create(*pair).AsInt16();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotAdd(Vector256<int> acc, Vector256<short> a, Vector256<short> b) => AvxVnni.MultiplyWideningAndAdd(acc, a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<int> value, int* target) => value.Store(target);
}

/// <summary>AVX-512BW vpmaddwd + vpaddd (512-bit).</summary>
internal readonly unsafe struct Avx512Dot : IInt16Dot<Vector512<short>, Vector512<int>>
{
    public static bool IsSupported => Avx512BW.IsSupported;

    public static int Lanes => 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> Load(short* source) => Vector512.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> BroadcastPair(int* pair) => Vector512.Create(*pair).AsInt16();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> DotAdd(Vector512<int> acc, Vector512<short> a, Vector512<short> b) => acc + Avx512BW.MultiplyAddAdjacent(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<int> value, int* target) => value.Store(target);
}
