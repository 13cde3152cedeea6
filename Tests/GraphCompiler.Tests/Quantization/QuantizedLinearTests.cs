using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Quantization;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Quantization;

[Trait(VectorWidths.Category, VectorWidths.Kernels)]
public sealed class QuantizedLinearTests
{
    public static TheoryData<ActivationQuantization, bool, bool, int> Cases()
    {
        var data = new TheoryData<ActivationQuantization, bool, bool, int>();
        foreach (var mode in new[] { ActivationQuantization.Static, ActivationQuantization.Dynamic })
        {
            foreach (var bias in new[] { false, true })
            {
                foreach (var gelu in new[] { false, true })
                {
                    foreach (var rank in new[] { 2, 3 })
                    {
                        data.Add(mode, bias, gelu, rank);
                    }
                }
            }
        }

        return data;
    }

    /// <summary>Against a reference that follows the definition in float64: q = clamp(round(x / s)) (the division in
    /// f32, as the kernel's contract says), acc = q·Wqᵀ exactly, y = acc·(s·wₙ) + b, GELU with erf. The integer parts
    /// are compared exactly; the f32 output may differ from the float64 reference only by f32 rounding.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void FollowsTheIntegerReference(ActivationQuantization mode, bool withBias, bool gelu, int rank)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var seeded = new Seeded(21);
        long k = 48, n = 40;
        var x = rank == 2 ? seeded.Normal(12, k) : seeded.Normal(3, 5, k);
        var (wq, ws) = Int8Weights.QuantizePerChannel(seeded.Normal(n, k).mul_(0.1));
        var bias = withBias ? seeded.Normal(n) : null;

        // Static: a calibrated scale smaller than max|x|/127, so some values clip at ±127.
        var staticScale = tensor(0.8f * x.abs().max().item<float>() / 127f);
        var y = Kernels.QuantizedLinear(x, staticScale, wq, ws, bias, gelu, mode);

        var s = mode == ActivationQuantization.Static ? staticScale : tensor(x.abs().max().item<float>() / 127f);
        var q = x.div(s).round().clamp(-127, 127);
        Assert.True(Seeded.Same(Kernels.QuantizeActivation(x, s).to(ScalarType.Float32), q), "quantized activation");
        if (mode == ActivationQuantization.Static)
        {
            Assert.True(q.abs().eq(127).any().item<bool>(), "the static case should exercise clipping");
        }

        var acc = q.to(ScalarType.Float64).reshape(-1, k).matmul(wq.to(ScalarType.Float64).t());
        Assert.True(Seeded.Same(Int8Gemm.MatMul(q.to(ScalarType.Int8).reshape(-1, k), wq.t()).to(ScalarType.Float64), acc), "int32 accumulators");
        var expected = acc.mul(ws.mul(s).to(ScalarType.Float64));
        if (bias is not null)
        {
            expected = expected.add(bias.to(ScalarType.Float64));
        }

        if (gelu)
        {
            expected = expected.mul(0.5).mul(expected.div(Math.Sqrt(2)).erf().add(1));
        }

        var outShape = x.shape.ToArray();
        outShape[^1] = n;
        Assert.Equal(outShape, y.shape);
        Assert.Equal(ScalarType.Float32, y.dtype);
        var error = y.reshape(-1, n).to(ScalarType.Float64).sub(expected).abs().max().item<double>();
        var magnitude = expected.abs().max().item<double>();
        Assert.True(error <= 1e-6 * Math.Max(1, magnitude), $"max |y − reference| = {error} for values up to {magnitude}");
    }

    /// <summary>The scratch buffers are reused across calls: an earlier result must survive later calls of other sizes,
    /// and every call must match a fresh computation (the unbuffered <see cref="Kernels.QuantizeActivation"/> path).</summary>
    [Fact]
    public void CallsOfChangingSizesDoNotShareResults()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var seeded = new Seeded(24);
        var (wq, ws) = Int8Weights.QuantizePerChannel(seeded.Normal(16, 32));
        var b = seeded.Normal(16);
        var inputs = new[] { seeded.Normal(50, 32), seeded.Normal(3, 32), seeded.Normal(2, 40, 32), seeded.Normal(0, 32) };
        var outputs = new List<Tensor>();
        foreach (var x in inputs)
        {
            outputs.Add(Kernels.QuantizedLinear(x, tensor(0f), wq, ws, b, false, ActivationQuantization.Dynamic));
            if (outputs.Count == 2)
            {
                Kernels.ReleaseQuantizedWorkspace();
            }
        }

        for (var i = 0; i < inputs.Length; i++)
        {
            var x2 = inputs[i].reshape(-1, 32);
            var expected = x2.shape[0] == 0
                ? zeros(0, 16)
                : Int8Gemm.MatMul(Kernels.QuantizeActivation(x2, Kernels.DynamicActivationScale(x2)), wq.t()).to(ScalarType.Float32)
                    .mul_(ws.mul(Kernels.DynamicActivationScale(x2))).add_(b);
            Assert.Equal(inputs[i].shape[..^1].Append(16L), outputs[i].shape);
            Assert.True(Seeded.Same(outputs[i].reshape(-1, 16), expected), $"call {i}");
        }
    }

    /// <summary>On the CPU the quantize and dequantize ends run as fused SIMD loops; without GELU they must give the
    /// torch-op path's results bit for bit, on vector bodies and scalar tails (K, N not multiples of the vector width),
    /// on the multi-threaded split (≥ 64 Ki elements), and on values at or next to rounding ties — also when the
    /// result is requantized to i8 for the next GEMM.</summary>
    [Theory]
    [InlineData(ActivationQuantization.Static, true, false)]
    [InlineData(ActivationQuantization.Dynamic, false, false)]
    [InlineData(ActivationQuantization.Static, false, false)]
    [InlineData(ActivationQuantization.Static, true, true)]
    public void CpuLoopsMatchTheTorchPathBitForBit(ActivationQuantization mode, bool withBias, bool requantize)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (x, s, wq, ws, bias) = TieHeavyCase(withBias);
        var outputScale = requantize ? tensor(0.0173f) : null;
        var torchOps = Kernels.QuantizedLinear(x, s, wq, ws, bias, false, mode, outputScale, cpuLoops: false);
        foreach (var width in VectorWidths.Vectors)
        {
            // The packed GEMM with its fused epilogue where the backend is packed, _int_mm + the loops where it is oneDNN.
            using var forced = VectorWidth.Force(width);
            var fused = Kernels.QuantizedLinear(x, s, wq, ws, bias, false, mode, outputScale, cpuLoops: true);
            Assert.Equal(requantize ? ScalarType.Int8 : ScalarType.Float32, fused.dtype);
            Assert.True(Seeded.Same(fused, torchOps), $"{width} bits ({Int8Gemm.Describe()}): max difference {fused.to(ScalarType.Float32).sub(torchOps.to(ScalarType.Float32)).abs().max().item<float>()}");
        }
    }

    /// <summary>The quantize and dequantize loops of the oneDNN backend (quantize, _int_mm, dequantize as three passes) at
    /// every width against the torch path, so they are proven on hosts whose backend is the packed GEMM too.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SeparateLoopsMatchTheTorchPathBitForBit(bool requantize)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (x, s, wq, ws, bias) = TieHeavyCase(withBias: true);
        var x2 = x.reshape(-1, x.shape[^1]);
        var expectedQ = Kernels.QuantizeActivation(x2, s);
        var acc = Int8Gemm.MatMul(expectedQ, wq.t());
        var combined = ws.mul(s);
        var expected = acc.to(ScalarType.Float32).mul_(combined).add_(bias!);
        if (requantize)
        {
            expected = Kernels.QuantizeActivation(expected, tensor(0.0173f));
        }

        foreach (var width in VectorWidths.Vectors)
        {
            using var forced = VectorWidth.Force(width);
            var q = empty_like(expectedQ);
            QuantizedCpuLoops.Quantize(x2, s.item<float>(), q);
            Assert.True(Seeded.Same(q, expectedQ), $"quantize at {width} bits");
            var y = empty_like(expected);
            if (requantize)
            {
                QuantizedCpuLoops.DequantizeToInt8(acc, combined, bias, false, 0.0173f, y);
            }
            else
            {
                QuantizedCpuLoops.Dequantize(acc, combined, bias, false, y);
            }

            Assert.True(Seeded.Same(y, expected), $"dequantize{(requantize ? " + requantize" : "")} at {width} bits");
        }
    }

    /// <summary>With GELU the CPU loop computes it itself (<c>VectorMath.Gelu</c>, erf to 1.5e-7) where libtorch uses
    /// its own erf (off by up to ~1e-6 in the negative tail, measured). Against GELU in float64 of the same pre-GELU
    /// values v (the bit-exact dequantized result): f32 outputs within 2e-7·max(1, |v|) plus an f32 rounding of y;
    /// requantized to i8, a value may round the other way only where GELU lands within that error of a rounding tie
    /// (at most one step, on a tiny fraction of values). Against libtorch's path: never more than one step apart.</summary>
    [Theory]
    [InlineData(ActivationQuantization.Static, false)]
    [InlineData(ActivationQuantization.Dynamic, false)]
    [InlineData(ActivationQuantization.Static, true)]
    public void CpuLoopsWithGeluFollowFloat64Gelu(ActivationQuantization mode, bool requantize)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (x, s, wq, ws, bias) = TieHeavyCase(withBias: true);
        var outputScale = tensor(0.0173f);
        var fused = Kernels.QuantizedLinear(x, s, wq, ws, bias, true, mode, requantize ? outputScale : null, cpuLoops: true);
        var v = Kernels.QuantizedLinear(x, s, wq, ws, bias, false, mode, null, cpuLoops: false).to(ScalarType.Float64);
        var reference = v.mul(0.5).mul(v.div(Math.Sqrt(2)).erf().add(1));
        if (requantize)
        {
            Assert.Equal(ScalarType.Int8, fused.dtype);
            var expected = reference.div(outputScale.to(ScalarType.Float64)).round().clamp(-127, 127);
            var difference = fused.to(ScalarType.Float64).sub(expected).abs();
            Assert.True(difference.max().item<double>() <= 1, "a requantized value moved by more than one step");
            var moved = difference.gt(0).sum().item<long>();
            Assert.True(moved <= fused.numel() / 10000, $"{moved} of {fused.numel()} requantized values differ from the float64 rounding");
            var torchOps = Kernels.QuantizedLinear(x, s, wq, ws, bias, true, mode, outputScale, cpuLoops: false);
            Assert.True(fused.to(ScalarType.Float32).sub(torchOps.to(ScalarType.Float32)).abs().max().item<float>() <= 1f);
        }
        else
        {
            var difference = fused.to(ScalarType.Float64).sub(reference).abs();
            var allowed = v.abs().clamp_min(1).mul(2e-7).add(reference.abs().clamp_min(1).mul(1.2e-7));
            var worst = difference.sub(allowed).argmax().item<long>();
            Assert.True(difference.le(allowed).all().item<bool>(),
                $"difference {difference.flatten()[worst].item<double>()} at v = {v.flatten()[worst].item<double>()}");
        }
    }

    /// <summary>An i8 input is the quantized activation itself: the same result as the f32 input it came from.</summary>
    [Theory]
    [InlineData(ActivationQuantization.Static)]
    [InlineData(ActivationQuantization.Dynamic)]
    public void AnInt8InputSkipsTheQuantizeStep(ActivationQuantization mode)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (x, s, wq, ws, bias) = TieHeavyCase(withBias: true);
        var fromFloat = Kernels.QuantizedLinear(x, s, wq, ws, bias, false, ActivationQuantization.Static);
        var fromInt8 = Kernels.QuantizedLinear(Kernels.QuantizeActivation(x, s), s, wq, ws, bias, false, mode);
        Assert.True(Seeded.Same(fromInt8, fromFloat));
    }

    /// <summary>Requantizing equals quantizing the f32 result with the next GEMM's scale (static); in dynamic mode the
    /// next GEMM quantizes per batch, so the result stays f32.</summary>
    [Fact]
    public void RequantizeIsTheQuantizedResultInStaticModeOnly()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (x, s, wq, ws, bias) = TieHeavyCase(withBias: true);
        var next = tensor(0.0211f);
        var y = Kernels.QuantizedLinear(x, s, wq, ws, bias, false, ActivationQuantization.Static);
        var requantized = Kernels.QuantizedLinearRequantize(x, s, wq, ws, bias, false, next, ActivationQuantization.Static);
        Assert.Equal(y.shape, requantized.shape);
        Assert.True(Seeded.Same(requantized, Kernels.QuantizeActivation(y, next)));
        var dynamic = Kernels.QuantizedLinearRequantize(x, s, wq, ws, bias, false, next, ActivationQuantization.Dynamic);
        Assert.Equal(ScalarType.Float32, dynamic.dtype);
        Assert.True(Seeded.Same(dynamic, Kernels.QuantizedLinear(x, s, wq, ws, bias, false, ActivationQuantization.Dynamic)));
        Assert.Throws<ArgumentException>(() => Kernels.QuantizedLinearRequantize(x, s, wq, ws, bias, false, tensor(new[] { 0.1f, 0.2f }), ActivationQuantization.Static));
    }

    /// <summary>x [3, 400, 203] (half of it on exact multiples of (j + 0.5)·s, where x / s lands on or within an ulp
    /// of a tie), s, and an int8 weight [77, 203].</summary>
    private static (Tensor X, Tensor S, Tensor Wq, Tensor Ws, Tensor? Bias) TieHeavyCase(bool withBias)
    {
        var seeded = new Seeded(25);
        long k = 203, n = 77;
        var s = tensor(0.0371f);
        var ties = seeded.Int8(-127, 127, 3, 200, k).to(ScalarType.Float32).add_(0.5f).mul_(s);
        var x = cat(new[] { seeded.Normal(3, 200, k).mul_(2), ties }, 1);
        var (wq, ws) = Int8Weights.QuantizePerChannel(seeded.Normal(n, k));
        return (x, s, wq, ws, withBias ? seeded.Normal(n) : null);
    }

    [Fact]
    public void StaysCloseToTheFloatLinear()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var seeded = new Seeded(22);
        var x = seeded.Normal(64, 96);
        var w = seeded.Normal(32, 96).mul_(0.1);
        var b = seeded.Normal(32);
        var (wq, ws) = Int8Weights.QuantizePerChannel(w);
        var y = Kernels.QuantizedLinear(x, tensor(0f), wq, ws, b, false, ActivationQuantization.Dynamic);
        var reference = Kernels.Linear(x, w, b);

        // Rounding x and W each costs ≤ half a step; relative to the output's spread the error stays around 1 %.
        var relative = y.sub(reference).norm().item<float>() / reference.norm().item<float>();
        Assert.InRange(relative, 1e-4, 0.02);
    }

    [Fact]
    public void RoundsHalfToEvenAndClampsToPlusMinus127()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new[] { 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 3.49f, 200f, -200f, 126.5f, -127.5f });
        var q = Kernels.QuantizeActivation(x, tensor(1f));
        Assert.Equal(new sbyte[] { 0, 2, 2, 0, -2, 3, 127, -127, 126, -127 }, q.data<sbyte>().ToArray());
    }

    [Fact]
    public void DynamicScaleIsMaxAbsOver127AndOneForAllZeros()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new[] { 0.5f, -2.54f, 1f }).reshape(1, 3);
        Assert.Equal(2.54f / 127f, Kernels.DynamicActivationScale(x).item<float>());
        Assert.Equal(1f, Kernels.DynamicActivationScale(zeros(2, 3)).item<float>());

        // All-zero input: scale 1, quantized zeros, the output is the bias (GELU of it when asked).
        var (wq, ws) = Int8Weights.QuantizePerChannel(ones(4, 3));
        var b = tensor(new[] { 1f, -1f, 0f, 2f });
        var y = Kernels.QuantizedLinear(zeros(2, 3), tensor(0f), wq, ws, b, true, ActivationQuantization.Dynamic);
        // The CPU loop's GELU is within 1e-7·|x| of libtorch's (VectorMath).
        Assert.True(y.allclose(nn.functional.gelu(b).expand(2, 4), rtol: 0, atol: 4e-7));
    }

    [Fact]
    public void DynamicModeIgnoresTheInputScale()
    {
        using var scope = NewDisposeScope();
        var seeded = new Seeded(23);
        var x = seeded.Normal(5, 8);
        var (wq, ws) = Int8Weights.QuantizePerChannel(seeded.Normal(6, 8));
        var a = Kernels.QuantizedLinear(x, tensor(new[] { 1f, 2f }), wq, ws, null, false, ActivationQuantization.Dynamic);
        var b = Kernels.QuantizedLinear(x, Kernels.DynamicActivationScale(x), wq, ws, null, false, ActivationQuantization.Static);
        Assert.True(Seeded.Same(a, b));
    }

    [Fact]
    public void WrongDtypesAndShapesAreClearErrors()
    {
        using var scope = NewDisposeScope();
        var x = zeros(2, 8);
        var s = tensor(0.1f);
        var (wq, ws) = Int8Weights.QuantizePerChannel(ones(4, 8));
        var b = zeros(4);
        const ActivationQuantization st = ActivationQuantization.Static;
        AssertError(() => Kernels.QuantizedLinear(x.to(ScalarType.Float64), s, wq, ws, b, false, st), "x", "x must be f32 (or i8, already quantized) [..., 8]");
        AssertError(() => Kernels.QuantizedLinear(zeros(2, 7), s, wq, ws, b, false, st), "x", "got Float32 [2, 7]");
        AssertError(() => Kernels.QuantizedLinear(x, s, ones(4, 8), ws, b, false, st), "weight", "weight must be i8 [N, K] with K ≥ 1");
        AssertError(() => Kernels.QuantizedLinear(x, s, wq.reshape(32), ws, b, false, st), "weight", "weight must be i8 [N, K] with K ≥ 1");
        AssertError(() => Kernels.QuantizedLinear(x, s, wq, zeros(3), b, false, st), "weightScale", "weightScale must be f32 [4]");
        AssertError(() => Kernels.QuantizedLinear(x, s, wq, ws.to(ScalarType.Float64), b, false, st), "weightScale", "weightScale must be f32 [4]");
        AssertError(() => Kernels.QuantizedLinear(x, s, wq, ws, zeros(5), false, st), "bias", "bias must be f32 [4]");
        AssertError(() => Kernels.QuantizedLinear(x, tensor(new[] { 0.1f }), wq, ws, b, false, st), "inputScale", "inputScale must be an f32 scalar tensor");
        AssertError(() => Kernels.QuantizedLinear(x, tensor(0.1), wq, ws, b, false, st), "inputScale", "inputScale must be an f32 scalar tensor");
    }

    [Fact]
    public void ObserveHandsTheTensorToTheObserverAndReturnsIt()
    {
        using var scope = NewDisposeScope();
        var x = ones(2, 3);
        var seen = new List<(string, string, long)>();
        var observer = new Recorder(seen);
        Assert.Same(x, Kernels.Observe(x, observer, "encoder.layer.0.intermediate.dense", ActivationKinds.LayerNormOutput));
        Assert.Same(x, Kernels.Observe(x, null, "unobserved", ActivationKinds.Other));
        Assert.Equal(new[] { ("encoder.layer.0.intermediate.dense", "layer_norm_output", 6L) }, seen);
    }

    private sealed class Recorder(List<(string, string, long)> seen) : IActivationObserver
    {
        public void Observe(string slot, string kind, Tensor value) => seen.Add((slot, kind, value.numel()));
    }

    private static void AssertError(Action call, string parameter, string expected)
    {
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(parameter, e.ParamName);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
