using System.Runtime.CompilerServices;

namespace GraphCompiler.Runtime;

/// <summary>exp, 2^x and GELU on vectors of any width for the hand-written CPU loops (libtorch's are out of reach
/// inside a fused loop). Scalar twins of exp and GELU compute the same formulas, with the same roundings, for the
/// tails.</summary>
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
    /// relative error on that interval), and 2^n applied as two exact powers of two 2^⌊n/2⌋·2^(n−⌊n/2⌋), each a normal
    /// float, so only the last multiply rounds (correctly, into the subnormals or to ∞ where it must).
    /// CpuAttention's softmax works in log₂ units (scores and mask scaled by log₂ e), so this is its e^x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Exp2<TV>(TV y)
        where TV : struct, IFloatVector<TV>
    {
        // Bound y so n stays small (2^±160 is 0 or ∞ in float anyway); y goes second so a NaN passes through.
        y = TV.Min(TV.Create(160f), TV.Max(TV.Create(-160f), y));
        var n = TV.Round(y);
        var f = y - n;
        var p = TV.MultiplyAdd(TV.Create(0.000153533608f), f, TV.Create(0.00133988866f));
        p = TV.MultiplyAdd(p, f, TV.Create(0.00961843745f));
        p = TV.MultiplyAdd(p, f, TV.Create(0.0555033244f));
        p = TV.MultiplyAdd(p, f, TV.Create(0.240226479f));
        p = TV.MultiplyAdd(p, f, TV.Create(0.693147203f));
        p = TV.MultiplyAdd(p, f, TV.Create(1f));
        var half = TV.Round(n * TV.Create(0.5f)); // |half| ≤ 80 and |n − half| ≤ 80: both powers are normal floats
        return p * TV.PowerOfTwo(half) * TV.PowerOfTwo(n - half);
    }

    /// <summary>e^x to a few ulp over [−87.3, 88.4] (clamped outside; NaN stays NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Exp<TV>(TV x)
        where TV : struct, IFloatVector<TV>
    {
        x = TV.Min(TV.Create(ExpMax), TV.Max(TV.Create(ExpMin), x));
        var n = TV.Round(x * TV.Create(Log2E));
        var r = TV.MultiplyAdd(n, TV.Create(-Ln2Hi), x);
        r = TV.MultiplyAdd(n, TV.Create(-Ln2Lo), r);
        var p = TV.Create(1f / 5040);
        p = TV.MultiplyAdd(p, r, TV.Create(1f / 720));
        p = TV.MultiplyAdd(p, r, TV.Create(1f / 120));
        p = TV.MultiplyAdd(p, r, TV.Create(1f / 24));
        p = TV.MultiplyAdd(p, r, TV.Create(1f / 6));
        p = TV.MultiplyAdd(p, r, TV.Create(0.5f));
        p = TV.MultiplyAdd(p, r, TV.Create(1f));
        p = TV.MultiplyAdd(p, r, TV.Create(1f));
        return p * TV.PowerOfTwo(n);
    }

    public static float Exp(float x)
    {
        x = MathF.Min(ExpMax, MathF.Max(ExpMin, x));
        var n = MathF.Round(x * Log2E);
        var r = ScalarMath.MultiplyAdd(n, -Ln2Hi, x);
        r = ScalarMath.MultiplyAdd(n, -Ln2Lo, r);
        var p = 1f / 5040;
        p = ScalarMath.MultiplyAdd(p, r, 1f / 720);
        p = ScalarMath.MultiplyAdd(p, r, 1f / 120);
        p = ScalarMath.MultiplyAdd(p, r, 1f / 24);
        p = ScalarMath.MultiplyAdd(p, r, 1f / 6);
        p = ScalarMath.MultiplyAdd(p, r, 0.5f);
        p = ScalarMath.MultiplyAdd(p, r, 1f);
        p = ScalarMath.MultiplyAdd(p, r, 1f);
        return p * BitConverter.Int32BitsToSingle(((int)n + 127) << 23);
    }

    /// <summary>erfc(z) for z ≥ 0 (A&S 7.1.26) and e^(−z²), which it is built on (with z = |x|/√2 that is the
    /// unnormalised Gaussian density e^(−x²/2) GELU's derivative needs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (TV Erfc, TV Gaussian) ErfcAndGaussian<TV>(TV z)
        where TV : struct, IFloatVector<TV>
    {
        var t = TV.Create(1f) / TV.MultiplyAdd(z, TV.Create(P), TV.Create(1f));
        var poly = TV.MultiplyAdd(t, TV.Create(A5), TV.Create(A4));
        poly = TV.MultiplyAdd(poly, t, TV.Create(A3));
        poly = TV.MultiplyAdd(poly, t, TV.Create(A2));
        poly = TV.MultiplyAdd(poly, t, TV.Create(A1));
        var gaussian = Exp(-(z * z));
        return (poly * t * gaussian, gaussian);
    }

    public static (float Erfc, float Gaussian) ErfcAndGaussian(float z)
    {
        var t = 1f / ScalarMath.MultiplyAdd(z, P, 1f);
        var poly = ScalarMath.MultiplyAdd(t, A5, A4);
        poly = ScalarMath.MultiplyAdd(poly, t, A3);
        poly = ScalarMath.MultiplyAdd(poly, t, A2);
        poly = ScalarMath.MultiplyAdd(poly, t, A1);
        var gaussian = Exp(-(z * z));
        return (poly * t * gaussian, gaussian);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Gelu<TV>(TV x)
        where TV : struct, IFloatVector<TV>
    {
        var (erfc, _) = ErfcAndGaussian(TV.Abs(x) * TV.Create(InvSqrt2));
        var onePlusErf = TV.Select(TV.GreaterThanOrEqual(x, TV.Zero), TV.Create(2f) - erfc, erfc);
        return TV.Create(0.5f) * x * onePlusErf;
    }

    public static float Gelu(float x)
    {
        var (erfc, _) = ErfcAndGaussian(MathF.Abs(x) * InvSqrt2);
        return 0.5f * x * (x >= 0 ? 2f - erfc : erfc);
    }
}
