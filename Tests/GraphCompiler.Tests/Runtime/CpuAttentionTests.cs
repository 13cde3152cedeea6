using GraphCompiler.Runtime;
using GraphCompiler.Tests.Infrastructure;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace GraphCompiler.Tests.Runtime;

/// <summary>The hand-written CPU attention against libtorch's scaled_dot_product_attention: shapes with and without
/// tails, q/k/v as the strided views the generated code passes, the mask shapes it takes, fully masked rows, the
/// operands it must refuse; at every vector width (128, 256, 512 bits; the runtime emulates widths the host lacks).</summary>
[Trait(VectorWidths.Category, VectorWidths.Kernels)]
public sealed class CpuAttentionTests
{
    /// <summary>|actual − expected| ≤ Tolerance · max(1, |expected|). Both are float32 with float32 accumulation over
    /// at most 130 keys, summed in different orders and with differently rounded exponentials: a few ulps of values of
    /// order 1, so 1e-5 leaves room; a wrong mask, scale, stride or normalisation is off by far more.</summary>
    private const double Tolerance = 1e-5;

    public static TheoryData<int, int, int, int> Shapes => new()
    {
        { 2, 12, 128, 32 }, // MiniLM's heads
        { 3, 2, 37, 20 }, // key and row tails, head dim not a multiple of 16
        { 1, 1, 1, 8 },
        { 2, 4, 130, 64 },
        { 2, 3, 24, 48 }, // head dim with a 16-wide tail past whole 32-wide chunks
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void LengthMaskOnViewsOfOneProjection(int b, int h, int s, int d)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var generator = new torch.Generator(seed: (ulong)(b * 1000 + s + d));
        var (q, k, v) = ViewsOfOneProjection(b, h, s, d, generator);
        Assert.NotEqual(0, k.storage_offset()); // a view inside the projection, not at its start
        Assert.True(s == 1 || !q.is_contiguous());

        // Lengths: the whole sequence, a single token, and random ones in between.
        var lengths = randint(1, s + 1, new long[] { b }, generator: generator);
        lengths[0] = s;
        if (b > 1)
        {
            lengths[1] = 1;
        }

        var mask = Kernels.LengthMask(lengths, s, ScalarType.Float32);
        Assert.Equal(VectorWidth.IsAccelerated, CpuAttention.Applies(q, k, v, mask));
        var expected = F.scaled_dot_product_attention(q, k, v, mask);
        foreach (var bits in VectorWidths.Vectors)
        {
            var actual = RunAt(bits, q, k, v, mask);
            Assert.Equal(expected.shape, actual.shape);
            Assert.True(actual.permute(0, 2, 1, 3).is_contiguous(), "the result is a permuted contiguous [B, S, H, D] buffer");
            AssertClose(expected, actual, $"{b}×{h}×{s}×{d} at {bits} bits");
        }

        AssertClose(expected, Kernels.Attention(q, k, v, mask, 0.1, training: false), "Kernels.Attention");
    }

    [Theory]
    [InlineData(1, 1)] // one mask for every batch entry and head: [1, 1, S, S]
    [InlineData(2, 1)] // per batch entry: [B, 1, S, S]
    [InlineData(2, 3)] // per head as well: [B, H, S, S]
    public void MaskPerQueryRow(long maskBatch, long maskHeads)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var generator = new torch.Generator(seed: 11);
        const int b = 2, h = 3, s = 45, d = 32;
        var (q, k, v) = (Randn(b, h, s, d, generator), Randn(b, h, s, d, generator), Randn(b, h, s, d, generator));

        // Causal (float.MinValue above the diagonal) plus a random additive bias.
        var causal = ones(s, s).triu(1).mul(float.MinValue);
        var mask = (causal + Randn(maskBatch, maskHeads, s, s, generator)).contiguous();
        Assert.Equal(VectorWidth.IsAccelerated, CpuAttention.Applies(q, k, v, mask));
        var expected = F.scaled_dot_product_attention(q, k, v, mask);
        foreach (var bits in VectorWidths.Vectors)
        {
            AssertClose(expected, RunAt(bits, q, k, v, mask), $"mask [{maskBatch}, {maskHeads}, S, S] at {bits} bits");
        }
    }

    [Fact]
    public void MaskPerHeadBroadcastOverRows()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var generator = new torch.Generator(seed: 12);
        const int b = 2, h = 3, s = 40, d = 16;
        var (q, k, v) = (Randn(b, h, s, d, generator), Randn(b, h, s, d, generator), Randn(b, h, s, d, generator));
        var mask = Randn(b, h, 1, s, generator) * 4;
        var expected = F.scaled_dot_product_attention(q, k, v, mask);
        foreach (var bits in VectorWidths.Vectors)
        {
            AssertClose(expected, RunAt(bits, q, k, v, mask), $"mask [B, H, 1, S] at {bits} bits");
        }
    }

    /// <summary>Every key masked with float.MinValue: all scores round to the mask value, so libtorch's softmax is
    /// uniform and the row is the mean of v. With −∞ there is no finite score and libtorch gives 0.</summary>
    [Theory]
    [InlineData(float.MinValue)]
    [InlineData(float.NegativeInfinity)]
    public void FullyMaskedRows(float masked)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var generator = new torch.Generator(seed: 13);
        const int b = 3, h = 2, s = 33, d = 32;
        var (q, k, v) = ViewsOfOneProjection(b, h, s, d, generator);

        // Batch entry 1 has no valid key; in the [1, 1, S, S] case, query row 5 has none.
        var lengthMask = zeros(b, 1, 1, s);
        lengthMask[1] = masked;
        var rowMask = zeros(1, 1, s, s);
        rowMask[0, 0, 5] = masked;
        foreach (var (mask, name) in new[] { (lengthMask, "[B, 1, 1, S]"), (rowMask, "[1, 1, S, S]") })
        {
            Assert.Equal(VectorWidth.IsAccelerated, CpuAttention.Applies(q, k, v, mask));
            var expected = F.scaled_dot_product_attention(q, k, v, mask);
            foreach (var bits in VectorWidths.Vectors)
            {
                AssertClose(expected, RunAt(bits, q, k, v, mask), $"{name} masked with {masked} at {bits} bits");
            }
        }

        // Pin down what the comparison above relies on, so a change in libtorch shows up here.
        var whole = RunAt(256, q, k, v, lengthMask);
        var row = whole[1, .., 7];
        var meanOfV = v[1].mean(new long[] { 1 });
        AssertClose(masked == float.MinValue ? meanOfV : zeros_like(meanOfV), row, "fully masked batch entry");
    }

    [Fact]
    public void RefusesWhatItDoesNotHandleAndAttentionStillWorks()
    {
        using var scope = NewDisposeScope();
        var generator = new torch.Generator(seed: 14);
        const int b = 2, h = 2, s = 9, d = 8;
        var (q, k, v) = (Randn(b, h, s, d, generator), Randn(b, h, s, d, generator), Randn(b, h, s, d, generator));
        var mask = Kernels.LengthMask(tensor(new long[] { 9, 4 }), s, ScalarType.Float32);
        Assert.Equal(VectorWidth.IsAccelerated, CpuAttention.Applies(q, k, v, mask));
        using (no_grad())
        using (VectorWidth.Force(0))
        {
            // Without vector acceleration libtorch's kernel takes over.
            Assert.False(CpuAttention.Applies(q, k, v, mask));
            AssertClose(F.scaled_dot_product_attention(q, k, v, mask), Kernels.Attention(q, k, v, mask, 0.1, training: false), "no vector width");
        }

        // Needs a gradient: only while autograd is on.
        var leaf = q.detach().requires_grad_(true);
        Assert.False(CpuAttention.Applies(leaf, k, v, mask));
        var withGrad = Kernels.Attention(leaf, k, v, mask, 0.1, training: false);
        Assert.True(withGrad.requires_grad);
        using (no_grad())
        {
            Assert.Equal(VectorWidth.IsAccelerated, CpuAttention.Applies(leaf, k, v, mask));
            AssertClose(F.scaled_dot_product_attention(q, k, v, mask), withGrad.detach(), "requires_grad input");
        }

        using var _ = no_grad();
        var (q64, k64, v64, mask64) = (q.to_type(ScalarType.Float64), k.to_type(ScalarType.Float64), v.to_type(ScalarType.Float64), mask.to_type(ScalarType.Float64));
        Assert.False(CpuAttention.Applies(q64, k64, v64, mask64));
        Assert.False(CpuAttention.Applies(q64, k, v, mask));
        AssertClose(F.scaled_dot_product_attention(q64, k64, v64, mask64), Kernels.Attention(q64, k64, v64, mask64, 0.1, training: false), "float64");

        var (q3, k3, v3) = (q[0], k[0], v[0]);
        var mask3 = mask[0];
        Assert.False(CpuAttention.Applies(q3, k3, v3, mask3));
        AssertClose(F.scaled_dot_product_attention(q3, k3, v3, mask3), Kernels.Attention(q3, k3, v3, mask3, 0.1, training: false), "3-D");

        // Cross-attention shapes, a mask that is not [B|1, H|1, S|1, S], a column-strided q.
        Assert.False(CpuAttention.Applies(q, k[.., .., ..5], v[.., .., ..5], mask[.., .., .., ..5]));
        Assert.False(CpuAttention.Applies(q, k, v, zeros(b, 1, s, 1)));
        Assert.False(CpuAttention.Applies(q, k, v, zeros(b, 1, s)));
        var strided = Randn(b, h, s, 2 * d, generator)[.., .., .., TensorIndex.Slice(null, null, 2)];
        Assert.False(CpuAttention.Applies(strided, k, v, mask));
        AssertClose(F.scaled_dot_product_attention(strided, k, v, mask), Kernels.Attention(strided, k, v, mask, 0.1, training: false), "strided q");
    }

    /// <summary>Generated float64 models build their length mask in float32. libtorch 2.10's CPU attention misreads a
    /// mask of another dtype than q (wrong from seq 8 with AVX2 kernels, seq 16 with AVX-512 ones), so the kernel must
    /// hand it over in q's dtype: checked against softmax(QKᵀ/√d + mask)·V written out in float64.</summary>
    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    [InlineData(33)]
    public void Float64AttentionWithAFloat32MaskEqualsTheFormula(int s)
    {
        using var scope = NewDisposeScope();
        var generator = new torch.Generator(seed: 21);
        const int b = 2, h = 3, d = 4;
        var (q, k, v) = (randn(new long[] { b, h, s, d }, ScalarType.Float64, generator: generator),
            randn(new long[] { b, h, s, d }, ScalarType.Float64, generator: generator),
            randn(new long[] { b, h, s, d }, ScalarType.Float64, generator: generator));
        var mask = Kernels.LengthMask(tensor(new long[] { s, s - 3 }), s, ScalarType.Float32);
        var expected = matmul(softmax(matmul(q, k.transpose(-2, -1)).div(Math.Sqrt(d)).add(mask.to_type(ScalarType.Float64)), -1), v);
        AssertClose(expected, Kernels.Attention(q, k, v, mask, 0.0, training: false), $"float64 q/k/v, float32 mask, seq {s}");
    }

    /// <summary>q, k, v as the generated code makes them: one [B, S, 3·H·D] projection, each a narrow + reshape +
    /// permute view into it (k and v at non-zero storage offsets, rows 3·H·D floats apart).</summary>
    private static (Tensor Q, Tensor K, Tensor V) ViewsOfOneProjection(int b, int h, int s, int d, torch.Generator generator)
    {
        var qkv = randn(new long[] { b, s, 3 * h * d }, generator: generator);
        Tensor View(int i) => qkv.narrow(-1, i * h * d, h * d).reshape(b, s, h, d).permute(0, 2, 1, 3);
        return (View(0), View(1), View(2));
    }

    private static Tensor Randn(long b, long h, long s, long d, torch.Generator generator) => randn(new[] { b, h, s, d }, generator: generator);

    /// <summary>The kernel at <paramref name="bits"/> (forced on this thread).</summary>
    private static Tensor RunAt(int bits, Tensor q, Tensor k, Tensor v, Tensor mask)
    {
        using var _ = VectorWidth.Force(bits);
        Assert.True(CpuAttention.Applies(q, k, v, mask));
        return CpuAttention.Run(q, k, v, mask);
    }

    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        var e = expected.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
        var a = actual.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
        for (var i = 0; i < e.Length; i++)
        {
            var error = Math.Abs(a[i] - e[i]);
            if (!(error <= Tolerance * Math.Max(1, Math.Abs(e[i]))))
            {
                Assert.Fail($"{what}: element {i} is {a[i]:R}, libtorch {e[i]:R}");
            }
        }
    }
}
