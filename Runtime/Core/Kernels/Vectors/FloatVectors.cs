using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GraphCompiler.Runtime;

// The three widths of IFloatVector: the same members over Vector128, Vector256 and Vector512; only the reductions and
// the narrowing stores differ (they depend on how many lanes a width has).

/// <summary><see cref="IFloatVector{TSelf}"/> over <see cref="Vector128{T}"/>.</summary>
internal readonly unsafe struct Float128 : IFloatVector<Float128>
{
    public readonly Vector128<float> V;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Float128(Vector128<float> v) => V = v;

    public static int Count => Vector128<float>.Count;

    public static Float128 Zero => default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Create(float value) => new(Vector128.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Load(float* source) => new(Vector128.Load(source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Float128 value, float* target) => value.V.Store(target);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator +(Float128 a, Float128 b) => new(a.V + b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator -(Float128 a, Float128 b) => new(a.V - b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator *(Float128 a, Float128 b) => new(a.V * b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator /(Float128 a, Float128 b) => new(a.V / b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator -(Float128 a) => new(-a.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator &(Float128 a, Float128 b) => new(a.V & b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator ^(Float128 a, Float128 b) => new(a.V ^ b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 MultiplyAdd(Float128 a, Float128 b, Float128 c) =>
        new(ScalarMath.FusedMultiplyAdd ? Vector128.FusedMultiplyAdd(a.V, b.V, c.V) : (a.V * b.V) + c.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Min(Float128 a, Float128 b) => new(Vector128.MinNative(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Max(Float128 a, Float128 b) => new(Vector128.MaxNative(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Abs(Float128 x) => new(Vector128.Abs(x.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Sqrt(Float128 x) => new(Vector128.Sqrt(x.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Round(Float128 x) => new(Vector128.Round(x.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 GreaterThan(Float128 a, Float128 b) => new(Vector128.GreaterThan(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 GreaterThanOrEqual(Float128 a, Float128 b) => new(Vector128.GreaterThanOrEqual(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Equal(Float128 a, Float128 b) => new(Vector128.Equals(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Select(Float128 mask, Float128 a, Float128 b) => new(Vector128.ConditionalSelect(mask.V, a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Float128 v) => Vector128.Sum(v.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 PowerOfTwo(Float128 n) =>
        new(Vector128.ShiftLeft(Vector128.ConvertToInt32Native(n.V) + Vector128.Create(127), 23).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 LoadInt32AsSingle(int* source) => new(Vector128.ConvertToSingle(Vector128.Load(source)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 UIntSequence(uint start) => new((Vector128.Create(start) + Vector128<uint>.Indices).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 UIntCreate(uint value) => new(Vector128.Create(value).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 UIntMultiply(Float128 a, uint factor) => new((a.V.AsUInt32() * Vector128.Create(factor)).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 UIntShiftRight(Float128 a, int count) => new(Vector128.ShiftRightLogical(a.V.AsUInt32(), count).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 UIntGreaterThanOrEqual(Float128 a, Float128 b) => new(Vector128.GreaterThanOrEqual(a.V.AsUInt32(), b.V.AsUInt32()).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Float128 v)
    {
        var pairs = Vector128.Max(v.V, Vector128.Shuffle(v.V, Vector128.Create(2, 3, 0, 1)));
        return MathF.Max(pairs.ToScalar(), pairs.GetElement(1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreAsSByte(Float128 integral, sbyte* target)
    {
        var shorts = Vector128.NarrowWithSaturation(Vector128.ConvertToInt32Native(integral.V), Vector128<int>.Zero);
        *(int*)target = Vector128.NarrowWithSaturation(shorts, shorts).AsInt32().ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreAsInt16(Float128 integral, short* target)
    {
        var shorts = Vector128.NarrowWithSaturation(Vector128.ConvertToInt32Native(integral.V), Vector128<int>.Zero);
        *(long*)target = shorts.AsInt64().ToScalar();
    }
}

/// <summary><see cref="IFloatVector{TSelf}"/> over <see cref="Vector256{T}"/>.</summary>
internal readonly unsafe struct Float256 : IFloatVector<Float256>
{
    public readonly Vector256<float> V;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Float256(Vector256<float> v) => V = v;

    public static int Count => Vector256<float>.Count;

    public static Float256 Zero => default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Create(float value) => new(Vector256.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Load(float* source) => new(Vector256.Load(source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Float256 value, float* target) => value.V.Store(target);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator +(Float256 a, Float256 b) => new(a.V + b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator -(Float256 a, Float256 b) => new(a.V - b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator *(Float256 a, Float256 b) => new(a.V * b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator /(Float256 a, Float256 b) => new(a.V / b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator -(Float256 a) => new(-a.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator &(Float256 a, Float256 b) => new(a.V & b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator ^(Float256 a, Float256 b) => new(a.V ^ b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 MultiplyAdd(Float256 a, Float256 b, Float256 c) =>
        new(ScalarMath.FusedMultiplyAdd ? Vector256.FusedMultiplyAdd(a.V, b.V, c.V) : (a.V * b.V) + c.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Min(Float256 a, Float256 b) => new(Vector256.MinNative(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Max(Float256 a, Float256 b) => new(Vector256.MaxNative(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Abs(Float256 x) => new(Vector256.Abs(x.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Sqrt(Float256 x) => new(Vector256.Sqrt(x.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Round(Float256 x) => new(Vector256.Round(x.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 GreaterThan(Float256 a, Float256 b) => new(Vector256.GreaterThan(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 GreaterThanOrEqual(Float256 a, Float256 b) => new(Vector256.GreaterThanOrEqual(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Equal(Float256 a, Float256 b) => new(Vector256.Equals(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Select(Float256 mask, Float256 a, Float256 b) => new(Vector256.ConditionalSelect(mask.V, a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Float256 v) => Vector256.Sum(v.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 PowerOfTwo(Float256 n) =>
        new(Vector256.ShiftLeft(Vector256.ConvertToInt32Native(n.V) + Vector256.Create(127), 23).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 LoadInt32AsSingle(int* source) => new(Vector256.ConvertToSingle(Vector256.Load(source)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 UIntSequence(uint start) => new((Vector256.Create(start) + Vector256<uint>.Indices).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 UIntCreate(uint value) => new(Vector256.Create(value).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 UIntMultiply(Float256 a, uint factor) => new((a.V.AsUInt32() * Vector256.Create(factor)).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 UIntShiftRight(Float256 a, int count) => new(Vector256.ShiftRightLogical(a.V.AsUInt32(), count).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 UIntGreaterThanOrEqual(Float256 a, Float256 b) => new(Vector256.GreaterThanOrEqual(a.V.AsUInt32(), b.V.AsUInt32()).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Float256 v) => Float128.MaxAcross(new Float128(Vector128.Max(v.V.GetLower(), v.V.GetUpper())));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreAsSByte(Float256 integral, sbyte* target)
    {
        var shorts = Vector256.NarrowWithSaturation(Vector256.ConvertToInt32Native(integral.V), Vector256<int>.Zero);
        *(long*)target = Vector256.NarrowWithSaturation(shorts, shorts).AsInt64().ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreAsInt16(Float256 integral, short* target)
    {
        var shorts = Vector256.NarrowWithSaturation(Vector256.ConvertToInt32Native(integral.V), Vector256<int>.Zero);
        shorts.GetLower().Store(target);
    }
}

/// <summary><see cref="IFloatVector{TSelf}"/> over <see cref="Vector512{T}"/>.</summary>
internal readonly unsafe struct Float512 : IFloatVector<Float512>
{
    public readonly Vector512<float> V;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Float512(Vector512<float> v) => V = v;

    public static int Count => Vector512<float>.Count;

    public static Float512 Zero => default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Create(float value) => new(Vector512.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Load(float* source) => new(Vector512.Load(source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Float512 value, float* target) => value.V.Store(target);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator +(Float512 a, Float512 b) => new(a.V + b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator -(Float512 a, Float512 b) => new(a.V - b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator *(Float512 a, Float512 b) => new(a.V * b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator /(Float512 a, Float512 b) => new(a.V / b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator -(Float512 a) => new(-a.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator &(Float512 a, Float512 b) => new(a.V & b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator ^(Float512 a, Float512 b) => new(a.V ^ b.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 MultiplyAdd(Float512 a, Float512 b, Float512 c) =>
        new(ScalarMath.FusedMultiplyAdd ? Vector512.FusedMultiplyAdd(a.V, b.V, c.V) : (a.V * b.V) + c.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Min(Float512 a, Float512 b) => new(Vector512.MinNative(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Max(Float512 a, Float512 b) => new(Vector512.MaxNative(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Abs(Float512 x) => new(Vector512.Abs(x.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Sqrt(Float512 x) => new(Vector512.Sqrt(x.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Round(Float512 x) => new(Vector512.Round(x.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 GreaterThan(Float512 a, Float512 b) => new(Vector512.GreaterThan(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 GreaterThanOrEqual(Float512 a, Float512 b) => new(Vector512.GreaterThanOrEqual(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Equal(Float512 a, Float512 b) => new(Vector512.Equals(a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Select(Float512 mask, Float512 a, Float512 b) => new(Vector512.ConditionalSelect(mask.V, a.V, b.V));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Float512 v) => Vector512.Sum(v.V);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 PowerOfTwo(Float512 n) =>
        new(Vector512.ShiftLeft(Vector512.ConvertToInt32Native(n.V) + Vector512.Create(127), 23).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 LoadInt32AsSingle(int* source) => new(Vector512.ConvertToSingle(Vector512.Load(source)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 UIntSequence(uint start) => new((Vector512.Create(start) + Vector512<uint>.Indices).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 UIntCreate(uint value) => new(Vector512.Create(value).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 UIntMultiply(Float512 a, uint factor) => new((a.V.AsUInt32() * Vector512.Create(factor)).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 UIntShiftRight(Float512 a, int count) => new(Vector512.ShiftRightLogical(a.V.AsUInt32(), count).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 UIntGreaterThanOrEqual(Float512 a, Float512 b) => new(Vector512.GreaterThanOrEqual(a.V.AsUInt32(), b.V.AsUInt32()).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Float512 v) => Float256.MaxAcross(new Float256(Vector256.Max(v.V.GetLower(), v.V.GetUpper())));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreAsSByte(Float512 integral, sbyte* target)
    {
        var shorts = Vector512.NarrowWithSaturation(Vector512.ConvertToInt32Native(integral.V), Vector512<int>.Zero);
        Vector512.NarrowWithSaturation(shorts, shorts).GetLower().GetLower().Store(target);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreAsInt16(Float512 integral, short* target)
    {
        var shorts = Vector512.NarrowWithSaturation(Vector512.ConvertToInt32Native(integral.V), Vector512<int>.Zero);
        shorts.GetLower().Store(target);
    }
}
