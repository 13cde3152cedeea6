using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GraphCompiler.Runtime;

/// <summary>exp, 2^x and GELU on AVX-512 vectors for the hand-written CPU loops (libtorch's are out of reach inside a
/// fused loop). Scalar twins of exp and GELU compute the same formulas for the tails.</summary>
internal static class VectorMath
{
    // exp: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-7 Taylor polynomial (truncation < 1e-8 relative), 2^n by
    // building the exponent bits. Inputs are clamped so 2^n stays a normal float: results below 1.2e-38 come out as
    // that, results above 2.1e38 as that (the callers only take exp of values ≤ 0).
    private const float ExpMin = -87.33654f, ExpMax = 88.37626f;
    private const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693145751953125f, Ln2Lo = 1.42860682030941723212e-6f;

    // GELU(x) = ½·x·(1 + erf(x/√2)) through erfc(z) ≈ t·(a₁ + t·(a₂ + t·(a₃ + t·(a₄ + t·a₅))))·e^(−z²), t = 1/(1 + p·z),
    // z = |x|/√2 (Abramowitz & Stegun 7.1.26, absolute error ≤ 1.5e-7): 1 + erf = 2 − erfc for x ≥ 0 and erfc(|z|)
    // below, so GELU's error stays under 1e-7·|x| (a thousandth of an int8 step at any sensible scale).
    private const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;
    private const float InvSqrt2 = 0.70710678118654752f;

    /// <summary>2^y to within about 1 ulp (NaN stays NaN, −∞ gives 0, results beyond float's range round to 0 or ∞):
    /// 2^y = 2^n · 2^f with n = round(y), |f| ≤ ½, 2^f by a degree-6 polynomial (1 + f·q(f), q fitted for least maximum
    /// relative error on that interval), and 2^n applied by vscalefps, which rounds underflow and overflow correctly.
    /// CpuAttention's softmax works in log₂ units (scores and mask scaled by log₂ e), so this is its e^x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp2(Vector512<float> y)
    {
        // Bound y so n stays small (2^±160 is 0 or ∞ in float anyway); the bound comes first so a NaN y passes through.
        y = Vector512.MinNative(Vector512.Create(160f), Vector512.MaxNative(Vector512.Create(-160f), y));
        var n = Vector512.Round(y);
        var f = y - n;
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(0.000153533608f), f, Vector512.Create(0.00133988866f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(0.00961843745f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(0.0555033244f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(0.240226479f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(0.693147203f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512<float>.One);
        return Avx512F.Scale(p, n);
    }

    /// <summary>The largest of a vector's lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector512<float> v)
    {
        var half = Vector256.Max(v.GetLower(), v.GetUpper());
        var quarter = Vector128.Max(half.GetLower(), half.GetUpper());
        return MathF.Max(MathF.Max(quarter[0], quarter[1]), MathF.Max(quarter[2], quarter[3]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(ExpMin)), Vector512.Create(ExpMax));
        var n = Vector512.Round(x * Vector512.Create(Log2E));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.Create(1f / 5040);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 720));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 120));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 24));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        var twoToN = Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle();
        return p * twoToN;
    }

    public static float Exp(float x)
    {
        x = Math.Clamp(x, ExpMin, ExpMax);
        var n = MathF.Round(x * Log2E);
        var r = MathF.FusedMultiplyAdd(n, -Ln2Hi, x);
        r = MathF.FusedMultiplyAdd(n, -Ln2Lo, r);
        var p = 1f / 5040;
        p = MathF.FusedMultiplyAdd(p, r, 1f / 720);
        p = MathF.FusedMultiplyAdd(p, r, 1f / 120);
        p = MathF.FusedMultiplyAdd(p, r, 1f / 24);
        p = MathF.FusedMultiplyAdd(p, r, 1f / 6);
        p = MathF.FusedMultiplyAdd(p, r, 0.5f);
        p = MathF.FusedMultiplyAdd(p, r, 1f);
        p = MathF.FusedMultiplyAdd(p, r, 1f);
        return p * BitConverter.Int32BitsToSingle(((int)n + 127) << 23);
    }

    /// <summary>erfc(z) for z ≥ 0 (A&S 7.1.26) and e^(−z²), which it is built on (with z = |x|/√2 that is the
    /// unnormalised Gaussian density e^(−x²/2) GELU's derivative needs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector512<float> Erfc, Vector512<float> Gaussian) ErfcAndGaussian(Vector512<float> z)
    {
        var t = Vector512<float>.One / Vector512.FusedMultiplyAdd(z, Vector512.Create(P), Vector512<float>.One);
        var poly = Vector512.FusedMultiplyAdd(t, Vector512.Create(A5), Vector512.Create(A4));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A3));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A2));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A1));
        var gaussian = Exp(-(z * z));
        return (poly * t * gaussian, gaussian);
    }

    public static (float Erfc, float Gaussian) ErfcAndGaussian(float z)
    {
        var t = 1f / MathF.FusedMultiplyAdd(z, P, 1f);
        var poly = MathF.FusedMultiplyAdd(t, A5, A4);
        poly = MathF.FusedMultiplyAdd(poly, t, A3);
        poly = MathF.FusedMultiplyAdd(poly, t, A2);
        poly = MathF.FusedMultiplyAdd(poly, t, A1);
        var gaussian = Exp(-(z * z));
        return (poly * t * gaussian, gaussian);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Gelu(Vector512<float> x)
    {
        var (erfc, _) = ErfcAndGaussian(Vector512.Abs(x) * Vector512.Create(InvSqrt2));
        var onePlusErf = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, Vector512<float>.Zero), Vector512.Create(2f) - erfc, erfc);
        return Vector512.Create(0.5f) * x * onePlusErf;
    }

    public static float Gelu(float x)
    {
        var (erfc, _) = ErfcAndGaussian(MathF.Abs(x) * InvSqrt2);
        return 0.5f * x * (x >= 0 ? 2f - erfc : erfc);
    }
}
