namespace GraphCompiler.Runtime;

/// <summary>A vector of float lanes at one width (<see cref="Float128"/>, <see cref="Float256"/>, <see cref="Float512"/>):
/// what the hand-written CPU loops are written against, once, and instantiated per width (the way ATen's
/// <c>Vectorized&lt;float&gt;</c> or TensorPrimitives' operator structs are). The JIT compiles each instantiation
/// separately and inlines these members, so a loop over <c>TV</c> is the loop one would write by hand for that width.
/// Every width runs on any machine (unaccelerated widths are emulated by the runtime, slowly), which lets tests check
/// the wider instantiations on hosts that lack them; <see cref="VectorWidth"/> picks the one that runs.
/// Lane bits can be read as uint for the few integer steps the loops need (dropout's hash, exponent bits).</summary>
internal unsafe interface IFloatVector<TSelf>
    where TSelf : struct, IFloatVector<TSelf>
{
    /// <summary>Float lanes per vector.</summary>
    static abstract int Count { get; }

    static abstract TSelf Zero { get; }

    static abstract TSelf Create(float value);

    static abstract TSelf Load(float* source);

    static abstract void Store(TSelf value, float* target);

    static abstract TSelf operator +(TSelf a, TSelf b);

    static abstract TSelf operator -(TSelf a, TSelf b);

    static abstract TSelf operator *(TSelf a, TSelf b);

    static abstract TSelf operator /(TSelf a, TSelf b);

    static abstract TSelf operator -(TSelf a);

    /// <summary>Bitwise operations on the lanes' bits (masks from the comparisons are all ones or all zeros).</summary>
    static abstract TSelf operator &(TSelf a, TSelf b);

    static abstract TSelf operator ^(TSelf a, TSelf b);

    /// <summary>a·b + c, fused (one rounding) wherever the CPU has FMA, as <see cref="ScalarMath.MultiplyAdd"/> is, so
    /// vector lanes and scalar tails agree bit for bit; without FMA a multiply and an add (never a slow emulation).</summary>
    static abstract TSelf MultiplyAdd(TSelf a, TSelf b, TSelf c);

    /// <summary>Lane-wise minimum and maximum as the CPU computes them (one instruction): where a lane of either is NaN
    /// the result is b's lane on x86, so callers that must keep a NaN pass it second.</summary>
    static abstract TSelf Min(TSelf a, TSelf b);

    static abstract TSelf Max(TSelf a, TSelf b);

    static abstract TSelf Abs(TSelf x);

    static abstract TSelf Sqrt(TSelf x);

    /// <summary>Rounds to the nearest integer, ties to even (as MathF.Round and torch.round).</summary>
    static abstract TSelf Round(TSelf x);

    /// <summary>Comparisons give all-ones lanes where true, zero lanes where false.</summary>
    static abstract TSelf GreaterThan(TSelf a, TSelf b);

    static abstract TSelf GreaterThanOrEqual(TSelf a, TSelf b);

    static abstract TSelf Equal(TSelf a, TSelf b);

    /// <summary>mask ? a : b, lane by lane, for masks from the comparisons.</summary>
    static abstract TSelf Select(TSelf mask, TSelf a, TSelf b);

    static abstract float Sum(TSelf v);

    static abstract float MaxAcross(TSelf v);

    /// <summary>2^n for lanes holding integers in [−126, 127], built from the exponent bits.</summary>
    static abstract TSelf PowerOfTwo(TSelf n);

    /// <summary>Truncates integral lanes to int32 and stores them as int8 (the lanes must already be within ±127):
    /// <see cref="Count"/> bytes.</summary>
    static abstract void StoreAsSByte(TSelf integral, sbyte* target);

    /// <summary>As <see cref="StoreAsSByte"/> for int16: <see cref="Count"/> shorts.</summary>
    static abstract void StoreAsInt16(TSelf integral, short* target);

    /// <summary>Count int32 values converted to float.</summary>
    static abstract TSelf LoadInt32AsSingle(int* source);

    /// <summary>The lanes' bits read as uint: start, start + 1, …, start + Count − 1.</summary>
    static abstract TSelf UIntSequence(uint start);

    static abstract TSelf UIntCreate(uint value);

    /// <summary>Lane bits (as uint) times a constant, modulo 2³².</summary>
    static abstract TSelf UIntMultiply(TSelf a, uint factor);

    static abstract TSelf UIntShiftRight(TSelf a, int count);

    /// <summary>All-ones lanes where a ≥ b as uint.</summary>
    static abstract TSelf UIntGreaterThanOrEqual(TSelf a, TSelf b);
}
