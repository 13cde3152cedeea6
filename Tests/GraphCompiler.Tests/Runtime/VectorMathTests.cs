using System.Runtime.Intrinsics;
using GraphCompiler.Runtime;
using Xunit;

namespace GraphCompiler.Tests.Runtime;

/// <summary>The hand-written exp and GELU of the fused CPU loops, against float64 math.</summary>
public sealed class VectorMathTests
{
    /// <summary>exp over [−87, 88.3]: ≤ 4e-7 relative (a few ulp); below, at most the smallest normal, never NaN;
    /// above, finite.</summary>
    [Fact]
    public void ExpIsAccurateOverTheFloatRange()
    {
        var worst = 0.0;
        for (var x = -87f; x <= 88.3f; x += 0.0137f)
        {
            var expected = Math.Exp(x);
            worst = Math.Max(worst, Math.Abs(VectorMath.Exp(x) - expected) / expected);
            worst = Math.Max(worst, Math.Abs(VectorMath.Exp(Vector512.Create(x)).GetElement(3) - expected) / expected);
        }

        Assert.True(worst <= 4e-7, $"worst relative error {worst}");
        foreach (var x in new[] { -1000f, -100f, float.MinValue })
        {
            Assert.InRange(VectorMath.Exp(x), 0f, 1.2e-38f);
            Assert.InRange(VectorMath.Exp(Vector512.Create(x)).GetElement(0), 0f, 1.2e-38f);
        }

        Assert.True(float.IsFinite(VectorMath.Exp(1000f)));
        Assert.Equal(1f, VectorMath.Exp(0f), 7);
    }

    /// <summary>GELU(x) = ½x·erfc(−x/√2): within 2e-7·max(1, |x|) of float64 (erfc by series / continued fraction),
    /// and the vector lanes equal the scalar twin.</summary>
    [Fact]
    public void GeluMatchesFloat64()
    {
        var worst = 0.0;
        var lanes = new float[16];
        for (var start = -12f; start <= 12f; start += 16 * 0.00731f)
        {
            for (var i = 0; i < 16; i++)
            {
                lanes[i] = start + (i * 0.00731f);
            }

            var vector = VectorMath.Gelu(Vector512.Create(lanes));
            for (var i = 0; i < 16; i++)
            {
                var x = lanes[i];
                var expected = 0.5 * x * Erfc(-x / Math.Sqrt(2));
                var scalar = VectorMath.Gelu(x);
                Assert.Equal(scalar, vector.GetElement(i));
                worst = Math.Max(worst, Math.Abs(scalar - expected) / Math.Max(1, Math.Abs(x)));
            }
        }

        Assert.True(worst <= 2e-7, $"worst scaled error {worst}");
        Assert.Equal(0f, VectorMath.Gelu(-30f), 6);
        Assert.Equal(30f, VectorMath.Gelu(30f), 5);
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
