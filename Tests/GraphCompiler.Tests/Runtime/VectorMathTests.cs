using GraphCompiler.Runtime;
using GraphCompiler.Tests.Infrastructure;
using Xunit;

namespace GraphCompiler.Tests.Runtime;

/// <summary>The hand-written exp, 2^x and GELU of the fused CPU loops, against float64 math, at every vector width
/// (128, 256, 512 bits; widths the host lacks are emulated by the runtime, with the same IEEE arithmetic). Vector lanes
/// must equal the scalar twins that compute the loops' tails.</summary>
[Trait(VectorWidths.Category, VectorWidths.Kernels)]
public sealed unsafe class VectorMathTests
{
    /// <summary>exp over [−87, 88.3]: ≤ 4e-7 relative (a few ulp); below, at most the smallest normal, never NaN;
    /// above, finite; NaN stays NaN.</summary>
    [Fact]
    public void ExpIsAccurateOverTheFloatRange()
    {
        var xs = new List<float>();
        for (var x = -87f; x <= 88.3f; x += 0.0137f)
        {
            xs.Add(x);
        }

        var inputs = xs.ToArray();
        foreach (var lanes in AtEveryWidth(inputs, VectorMath.Exp, VectorMath.Exp, VectorMath.Exp))
        {
            var worst = 0.0;
            for (var i = 0; i < inputs.Length; i++)
            {
                var expected = Math.Exp(inputs[i]);
                worst = Math.Max(worst, Math.Abs(VectorMath.Exp(inputs[i]) - expected) / expected);
                Assert.Equal(VectorMath.Exp(inputs[i]), lanes[i]);
            }

            Assert.True(worst <= 4e-7, $"worst relative error {worst}");
        }

        float[] special = [-1000f, -100f, float.MinValue, 1000f, float.NaN, 0f, -0f, 88.3f];
        foreach (var lanes in AtEveryWidth(special, VectorMath.Exp, VectorMath.Exp, VectorMath.Exp))
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.InRange(lanes[i], 0f, 1.2e-38f);
                Assert.InRange(VectorMath.Exp(special[i]), 0f, 1.2e-38f);
            }

            Assert.True(float.IsFinite(lanes[3]));
            Assert.True(float.IsNaN(lanes[4]), "exp(NaN)");
            Assert.Equal(1f, lanes[5], 7);
            Assert.Equal(1f, lanes[6], 7);
        }
    }

    /// <summary>GELU(x) = ½x·erfc(−x/√2): within 2e-7·max(1, |x|) of float64 (erfc by series / continued fraction),
    /// and the vector lanes equal the scalar twin.</summary>
    [Fact]
    public void GeluMatchesFloat64()
    {
        var xs = new List<float>();
        for (var x = -12f; x <= 12f; x += 0.00731f)
        {
            xs.Add(x);
        }

        var inputs = xs.ToArray();
        foreach (var lanes in AtEveryWidth(inputs, VectorMath.Gelu, VectorMath.Gelu, VectorMath.Gelu))
        {
            var worst = 0.0;
            for (var i = 0; i < inputs.Length; i++)
            {
                var x = inputs[i];
                var expected = 0.5 * x * Erfc(-x / Math.Sqrt(2));
                var scalar = VectorMath.Gelu(x);
                Assert.Equal(scalar, lanes[i]);
                worst = Math.Max(worst, Math.Abs(scalar - expected) / Math.Max(1, Math.Abs(x)));
            }

            Assert.True(worst <= 2e-7, $"worst scaled error {worst}");
        }

        Assert.Equal(0f, VectorMath.Gelu(-30f), 6);
        Assert.Equal(30f, VectorMath.Gelu(30f), 5);
    }

    /// <summary>2^y within 2 ulps from y = −155 (subnormal results) to the largest finite power, and the special values:
    /// exact powers of two, 0 for −∞ and anything below −150, ∞ above 128, NaN through.</summary>
    [Fact]
    public void Exp2IsWithinTwoUlps()
    {
        var ys = new List<float>();
        const double step = 0.000977;
        for (var y = -155.0; y < 128; y += step)
        {
            ys.Add((float)y);
        }

        var inputs = ys.ToArray();
        foreach (var lanes in AtEveryWidth(inputs, VectorMath.Exp2, VectorMath.Exp2, VectorMath.Exp2))
        {
            var worst = 0.0;
            for (var i = 0; i < inputs.Length; i++)
            {
                var exact = Math.Exp(inputs[i] * Math.Log(2));
                var ulp = exact < Math.Pow(2, -126) ? Math.Pow(2, -149) : Math.Pow(2, Math.Floor(Math.Log2(exact)) - 23);
                var error = Math.Abs(lanes[i] - exact) / ulp;
                Assert.True(error <= 2, $"2^{inputs[i]:R}: {lanes[i]:R} vs {exact:R} ({error:F2} ulp)");
                worst = Math.Max(worst, error);
            }

            Assert.True(worst > 0.1, "the check compares something");
        }

        float[] special = [0, -0f, 1, -1, float.NegativeInfinity, float.MinValue, -1e30f, -1000, float.NaN, float.PositiveInfinity, 200, 127.99f, -149.5f, -160, 160, 0.5f];
        foreach (var got in AtEveryWidth(special, VectorMath.Exp2, VectorMath.Exp2, VectorMath.Exp2))
        {
            Assert.Equal(1f, got[0]);
            Assert.Equal(1f, got[1]);
            Assert.Equal(2f, got[2]);
            Assert.Equal(0.5f, got[3]);
            for (var lane = 4; lane <= 7; lane++)
            {
                Assert.Equal(0f, got[lane]);
            }

            Assert.True(float.IsNaN(got[8]));
            Assert.Equal(float.PositiveInfinity, got[9]);
            Assert.Equal(float.PositiveInfinity, got[10]);
            var large = Math.Pow(2, special[11]);
            Assert.Equal(large, got[11], large * 2.5e-7);
            Assert.Equal(float.Epsilon, got[12]); // 2^−149.5 ≈ 0.71 · 2^−149 rounds to the smallest subnormal
            Assert.Equal(0f, got[13]);
            Assert.Equal(float.PositiveInfinity, got[14]);
            Assert.Equal(MathF.Sqrt(2), got[15], 2.5e-7f);
        }
    }

    /// <summary>f applied lane-wise at 128, 256 and 512 bits to the inputs, padded to a whole number of vectors.</summary>
    private static IEnumerable<float[]> AtEveryWidth(float[] inputs, Func<Float128, Float128> f128, Func<Float256, Float256> f256, Func<Float512, Float512> f512)
    {
        yield return Apply(inputs, f128);
        yield return Apply(inputs, f256);
        yield return Apply(inputs, f512);
    }

    private static float[] Apply<TV>(float[] inputs, Func<TV, TV> f)
        where TV : struct, IFloatVector<TV>
    {
        var count = (inputs.Length + TV.Count - 1) / TV.Count * TV.Count;
        var padded = new float[count];
        var result = new float[count];
        inputs.CopyTo(padded, 0);
        fixed (float* source = padded, target = result)
        {
            for (var i = 0; i < count; i += TV.Count)
            {
                TV.Store(f(TV.Load(source + i)), target + i);
            }
        }

        return result[..inputs.Length];
    }

    /// <summary>erfc in float64: series for small |z|, Lentz continued fraction for large |z| (both converge fast).</summary>
    private static double Erfc(double z)
    {
        if (z < 0)
        {
            return 2 - Erfc(-z);
        }

        if (z < 3)
        {
            // erf(z) = 2/√π · Σ (−1)ⁿ z^(2n+1) / (n! (2n+1))
            double sum = 0, term = z;
            for (var n = 0; n < 200; n++)
            {
                sum += term / ((2 * n) + 1);
                term *= -z * z / (n + 1);
            }

            return 1 - (2 / Math.Sqrt(Math.PI) * sum);
        }

        // erfc(z) = e^(−z²)/√π · 1/(z + 1/2/(z + 1/(z + 3/2/(z + ...))))
        double fraction = z;
        for (var n = 60; n >= 1; n--)
        {
            fraction = z + (n / 2.0 / fraction);
        }

        return Math.Exp(-z * z) / Math.Sqrt(Math.PI) / fraction;
    }
}
