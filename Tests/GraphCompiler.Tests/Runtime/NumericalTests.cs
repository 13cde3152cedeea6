using GraphCompiler.Runtime;
using GraphCompiler.Tests.Declarations;
using TorchSharp;
using GraphCompiler.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace GraphCompiler.Tests.Runtime;

/// <summary>torch's RNG is process-global: the seeded train-mode comparisons must not interleave with other tests that
/// draw random numbers, so this collection runs alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchRngCollection
{
    public const string Name = "torch global RNG";
}

/// <summary>The generated forward of each model in GraphCompiler.Tests.Declarations against the same computation written
/// by hand with plain TorchSharp ops (never GraphCompiler.Runtime.Kernels), per static shape bucket, in eval mode and
/// in train mode (dropout replayed from the same seed).</summary>
[Collection(TorchRngCollection.Name)]
[Trait(VectorWidths.Category, VectorWidths.Models)]
public sealed class NumericalTests
{
    /// <summary>Max |generated − reference| allowed. Everything is float32 on CPU; the generated code and the references
    /// take different but equivalent routes (addmm vs matmul+add, fused SDPA vs softmax(QKᵀ/√d + mask)V, layer_norm vs
    /// mean/var by hand), so they differ by a few float32 ulps of values of order 1 — far below 1e-5.</summary>
    private const double Tolerance = 1e-5;

    private readonly ITestOutputHelper _output;

    public NumericalTests(ITestOutputHelper output) => _output = output;

    // ───────────────────────────── element-wise ─────────────────────────────

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Elementwise(bool train)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var model = Create(() => new ElementwiseModelModule(), train);
        var p = Params(model, ElementwiseModelModule.PackedParameters);
        foreach (var bucket in ElementwiseModelModule.Buckets)
        {
            var x = randn(bucket.Batch, bucket.Seq, 8);
            var y = randn(bucket.Batch, bucket.Seq, 8);
            manual_seed(7);
            var actual = model.forward(x, y);
            manual_seed(7);
            var parts = new (string Op, Tensor Expected)[]
            {
                ("Add", x + y),
                ("+", x + y),
                ("Mul", x * y),
                ("* (tensor×tensor)", x * y),
                ("Scale(x, 1.5)", x * 1.5),
                ("x * 0.5", x * 0.5),
                ("0.25 * x", x * 0.25),
                ("- (sub)", x - y),
                ("Add (broadcast param)", x + p["bias"].expand(bucket.Batch, bucket.Seq, 8)),
                ("Mul (broadcast param)", x * p["gain"].expand(bucket.Batch, bucket.Seq, 8)),
                ("Tanh", TanhByHand(x)),
                ("Gelu", GeluByHand(x)),
                ("Softmax", SoftmaxByHand(x)),
                ("Dropout", train ? F.dropout(x, 0.25, training: true) : x),
            };
            AssertParts(actual, parts, 8, $"elementwise {bucket} train={train}");
            AssertDropoutHappened(train, actual.narrow(-1, 13 * 8, 8), () => x);
        }
    }

    // ───────────────────────────── views ─────────────────────────────

    [Fact]
    public void ShapeOps()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var model = Create(() => new ShapeModelModule(), train: false);
        foreach (var bucket in ShapeModelModule.Buckets)
        {
            int b = bucket.Batch, s = bucket.Seq;
            var x = randn(b, s, 12);
            var actual = model.forward(x);

            // Index arithmetic on the raw data, independent of TorchSharp's view ops.
            var data = x.data<float>().ToArray();
            float X(int i, int j, int k) => data[(i * s + j) * 12 + k];
            const int width = 12 + 12 + 4 + 5 + 12;
            var expected = new float[b * s * width];
            for (var i = 0; i < b; i++)
            {
                for (var j = 0; j < s; j++)
                {
                    var o = (i * s + j) * width;
                    // split[i,j,a,c] = x[i,j,4a+c]. Transpose(1,2) then Permute(0,2,3,1) → [i,j,c,a]; so does
                    // Transpose(split, -1, -2). Flattened: index 3c+a.
                    for (var a = 0; a < 3; a++)
                    {
                        for (var c = 0; c < 4; c++)
                        {
                            expected[o + (3 * c) + a] = X(i, j, (4 * a) + c);
                            expected[o + 12 + (3 * c) + a] = X(i, j, (4 * a) + c);
                        }
                    }

                    for (var c = 0; c < 4; c++)
                    {
                        expected[o + 24 + c] = X(i, j, 4 + c); // Select(split, 2, 1)
                    }

                    for (var k = 0; k < 5; k++)
                    {
                        expected[o + 28 + k] = X(i, j, 2 + k); // Slice(x, 2, 2, 7)
                    }

                    for (var k = 0; k < 12; k++)
                    {
                        expected[o + 33 + k] = X(i, j, k) + X(i, 0, k); // x + Select(x, 1, 0) broadcast over seq
                    }
                }
            }

            var parts = new (string Op, Tensor Expected)[]
            {
                ("Reshape(Batch,Seq,3,4) + Transpose(1,2) + Permute(0,2,3,1) + Reshape(Batch,Seq,12)", null!),
                ("Transpose(-1,-2) + Reshape(Batch,Seq,-1)", null!),
                ("Select(split, 2, 1)", null!),
                ("Slice(x, 2, 2, 7)", null!),
                ("Select(x, 1, 0) + Reshape + broadcast Add", null!),
            };
            var whole = tensor(expected).reshape(b, s, width);
            var widths = new long[] { 12, 12, 4, 5, 12 };
            var offset = 0L;
            for (var i = 0; i < parts.Length; i++)
            {
                parts[i].Expected = whole.narrow(-1, offset, widths[i]);
                offset += widths[i];
            }

            AssertParts(actual, parts, widths, $"shapes {bucket}");
        }
    }

    // ───────────────────────────── MatMul, masked softmax ─────────────────────────────

    [Fact]
    public void MatMulAndSoftmax()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var model = Create(() => new MatMulSoftmaxModelModule(), train: false);
        foreach (var bucket in MatMulSoftmaxModelModule.Buckets)
        {
            var x = randn(bucket.Batch, bucket.Seq, 8);
            var y = randn(bucket.Batch, bucket.Seq, 8);
            // Additive mask [batch, 1, seq]: -1e9 at random positions, column 0 always open.
            var mask = where(rand(bucket.Batch, 1, bucket.Seq) < 0.4, -1e9f, 0f);
            mask[.., .., 0] = 0f;
            var actual = model.forward(x, y, mask);

            var scores = BatchedMatMulByHand(x, y.transpose(1, 2));
            var parts = new (string Op, Tensor Expected)[]
            {
                ("MatMul + Softmax(x, mask)", BatchedMatMulByHand(SoftmaxByHand(scores + mask), y)),
                ("MatMul + Softmax(x)", BatchedMatMulByHand(SoftmaxByHand(scores), y)),
            };
            AssertParts(actual, parts, 8, $"matmul/softmax {bucket}");
        }
    }

    // ───────────────────────────── Linear ─────────────────────────────

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LinearWithAndWithoutBias(bool gradEnabled)
    {
        // With autograd on, linear+gelu takes the out-of-place path; without, the in-place one.
        using var scope = NewDisposeScope();
        using var grad = gradEnabled ? enable_grad() : no_grad();
        var model = Create(() => new LinearModelModule(), train: false);
        var p = Params(model, LinearModelModule.PackedParameters);
        Assert.Contains(LinearModelModule.PackedParameters, pp => pp.Name == "proj.left_right.weight");
        foreach (var bucket in LinearModelModule.Buckets)
        {
            var x = randn(bucket.Batch, bucket.Seq, 8);
            var actual = model.forward(x).detach();
            using var noGrad = no_grad();
            var parts = new (string Op, Tensor Expected)[]
            {
                ("Linear proj.left (packed)", LinearByHand(x, p["proj.left.weight"], p["proj.left.bias"])),
                ("Linear proj.right (packed)", LinearByHand(x, p["proj.right.weight"], p["proj.right.bias"])),
                ("Linear plain (addmm bias)", LinearByHand(TanhByHand(x), p["plain.weight"], p["plain.bias"])),
                ("Gelu(Linear) (linear_gelu)", GeluByHand(LinearByHand(x * 0.5, p["up.weight"], p["up.bias"]))),
                ("Linear bias: false", LinearByHand(GeluByHand(x), p["no_bias.weight"], null)),
                ("Gelu(Linear bias: false)", GeluByHand(LinearByHand(SoftmaxByHand(x), p["up_no_bias.weight"], null))),
            };
            AssertParts(actual, parts, new long[] { 6, 4, 5, 12, 3, 4 }, $"linear {bucket} grad={gradEnabled}");
        }
    }

    // ───────────────────────────── LayerNorm ─────────────────────────────

    [Fact]
    public void LayerNormPlainAndResidual()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var model = Create(() => new LayerNormModelModule(), train: false);
        var p = Params(model, LayerNormModelModule.PackedParameters);
        foreach (var bucket in LayerNormModelModule.Buckets)
        {
            var x = randn(bucket.Batch, bucket.Seq, 8) * 3 + 1;
            var y = randn(bucket.Batch, bucket.Seq, 8);
            var actual = model.forward(x, y);
            var parts = new (string Op, Tensor Expected)[]
            {
                ("LayerNorm (eps 1e-5)", LayerNormByHand(x, p["plain_norm.weight"], p["plain_norm.bias"], 1e-5)),
                ("LayerNorm(x + y) (add_layer_norm)", LayerNormByHand(x + y, p["residual_norm.weight"], p["residual_norm.bias"], 1e-12)),
            };
            AssertParts(actual, parts, 8, $"layer_norm {bucket}");
        }
    }

    // ───────────────────────────── Embedding, PositionEmbedding, LengthMask ─────────────────────────────

    [Fact]
    public void EmbeddingsAndLengthMask()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var model = Create(() => new EmbeddingModelModule(), train: false);
        var p = Params(model, EmbeddingModelModule.PackedParameters);
        foreach (var bucket in EmbeddingModelModule.Buckets)
        {
            int b = bucket.Batch, s = bucket.Seq;
            var ids = randint(0, 20, new long[] { b, s }, dtype: ScalarType.Int64);
            var types = randint(0, 2, new long[] { b, s }, dtype: ScalarType.Int64);
            // Full length, a short one, and an empty one (a fully masked row must stay finite).
            var lengths = tensor(new long[] { s, 2, 0 });
            var actual = model.forward(ids, types, lengths);

            var x = GatherRows(p["words.weight"], ids) + GatherRows(p["kinds.weight"], types) + p["positions.weight"][TensorIndex.Slice(0, s)];
            var grid = x.reshape(b, 1, s, 8);
            var probs = SoftmaxByHand(BatchedMatMulByHand(grid, grid.transpose(-1, -2)) + LengthMaskByHand(new long[] { s, 2, 0 }, s));
            var parts = new (string Op, Tensor Expected)[]
            {
                ("Embedding + Embedding + PositionEmbedding", x),
                ("LengthMask + Softmax(x, mask) + MatMul", BatchedMatMulByHand(probs, grid).reshape(b, s, 8)),
            };
            AssertParts(actual, parts, 8, $"embedding {bucket}");
            Assert.True(isfinite(actual).all().item<bool>(), "a fully masked row must stay finite");
        }
    }

    [Fact]
    public void Float64KeepsItsDtypeAndMask()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var model = Create(() => new Float64ModelModule(), train: false);
        foreach (var bucket in Float64ModelModule.Buckets)
        {
            int b = bucket.Batch, s = bucket.Seq;
            var x = randn(b, s, 8, dtype: ScalarType.Float64) * 3;
            var lengths = new long[] { s - 1, 0 };
            var actual = model.forward(x, tensor(lengths));
            Assert.Equal(ScalarType.Float64, actual.dtype);

            var mask = zeros(b, 1, 1, s, dtype: ScalarType.Float64);
            for (var i = 0; i < b; i++)
            {
                for (var j = lengths[i]; j < s; j++)
                {
                    mask[i, 0, 0, j] = double.MinValue;
                }
            }

            var grid = x.reshape(b, 1, s, 8);
            var probs = SoftmaxByHand((BatchedMatMulByHand(grid, grid.transpose(-1, -2)) * 0.5) + mask);
            var expected = BatchedMatMulByHand(probs, TanhByHand(grid)).reshape(b, s, 8);
            AssertParts(actual, new[] { ("LengthMask f64 + Scale + Softmax(x, mask) + MatMul + Tanh", expected) }, new long[] { 8 }, $"float64 {bucket}", ScalarType.Float64);
        }
    }

    // ───────────────────────────── Attention (SDPA) ─────────────────────────────

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MultiHeadAttention(bool train)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var model = Create(() => new AttentionModelModule(), train);
        var p = Params(model, AttentionModelModule.PackedParameters);
        foreach (var bucket in AttentionModelModule.Buckets)
        {
            int b = bucket.Batch, s = bucket.Seq;
            var x = randn(b, s, 16);
            // A short row and an empty one: a fully masked row must stay finite (uniform over the keys).
            var lengths = new long[] { s - 2, 0 };
            manual_seed(11);
            var actual = model.forward(x, tensor(lengths));
            manual_seed(11);
            var expected = AttentionByHand(
                LinearByHand(x, p["self.query.weight"], p["self.query.bias"]),
                LinearByHand(x, p["self.key.weight"], p["self.key.bias"]),
                LinearByHand(x, p["self.value.weight"], p["self.value.bias"]),
                LengthMaskByHand(lengths, s), heads: 4, dropout: 0.2, train);
            AssertParts(actual, new[] { ("Attention (packed QKV + SDPA)", expected) }, 16, $"attention {bucket} train={train}");
            AssertDropoutHappened(train, actual, () => AttentionByHand(
                LinearByHand(x, p["self.query.weight"], p["self.query.bias"]),
                LinearByHand(x, p["self.key.weight"], p["self.key.bias"]),
                LinearByHand(x, p["self.value.weight"], p["self.value.bias"]),
                LengthMaskByHand(lengths, s), heads: 4, dropout: 0.2, train: false));
        }
    }

    // ───────────────────────────── Encoder: Apply, Repeat, all fused paths ─────────────────────────────

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EncoderLayersApplyAndRepeat(bool train)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var model = Create(() => new EncoderModelModule(), train);
        var p = Params(model, EncoderModelModule.PackedParameters);
        Assert.Equal(6, EncoderModelModule.PackedParameters.Count); // q/k/v packed in all three layers
        foreach (var bucket in EncoderModelModule.Buckets)
        {
            int b = bucket.Batch, s = bucket.Seq;
            var x = randn(b, s, 16);
            var lengths = new long[] { s - 1, 3 };
            manual_seed(3);
            var actual = model.forward(x, tensor(lengths));
            manual_seed(3);
            var mask = LengthMaskByHand(lengths, s);
            var h = EncoderLayerByHand(x, mask, p, "first.", heads: 2, dropout: 0.1, train);
            h = EncoderLayerByHand(h, mask, p, "layer.0.", heads: 4, dropout: 0.2, train);
            h = EncoderLayerByHand(h, mask, p, "layer.1.", heads: 4, dropout: 0.2, train);
            var pooled = TanhByHand(LinearByHand(h[.., 0], p["pooler.dense.weight"], p["pooler.dense.bias"]));
            var parts = new (string Op, Tensor Expected)[]
            {
                ("Apply + Repeat(2) encoder layers", h),
                ("Apply pooler (Select + Linear + Tanh)", h + pooled.unsqueeze(1)),
            };
            AssertParts(actual, parts, 16, $"encoder {bucket} train={train}");
            AssertDropoutHappened(train, actual, () =>
            {
                var e = EncoderLayerByHand(x, mask, p, "first.", heads: 2, dropout: 0.1, train: false);
                e = EncoderLayerByHand(e, mask, p, "layer.0.", heads: 4, dropout: 0.2, train: false);
                e = EncoderLayerByHand(e, mask, p, "layer.1.", heads: 4, dropout: 0.2, train: false);
                return cat(new[] { e, e + TanhByHand(LinearByHand(e[.., 0], p["pooler.dense.weight"], p["pooler.dense.bias"])).unsqueeze(1) }, -1);
            });
        }
    }

    // ───────────────────────────── Dropout ─────────────────────────────

    [Fact]
    public void DropoutMatchesSeededReferenceAndHasTheRightStatistics()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        const double p = 0.3;
        var model = Create(() => new DropoutModelModule(), train: true);
        foreach (var bucket in DropoutModelModule.Buckets)
        {
            var x = rand(bucket.Batch, bucket.Seq, 64) + 0.5; // strictly positive, so zero means dropped
            manual_seed(42);
            var actual = model.forward(x);
            manual_seed(42);
            AssertParts(actual, new[] { ("Dropout (seeded)", F.dropout(x, p, training: true)) }, 64, $"dropout {bucket}");

            var dropped = actual.eq(0);
            var fraction = dropped.to_type(ScalarType.Float64).mean().item<double>();
            // n ≥ 8192 elements: the std of the fraction is ≤ √(0.3·0.7/8192) ≈ 0.005; allow 0.03.
            Assert.InRange(fraction, p - 0.03, p + 0.03);
            var kept = dropped.logical_not();
            var ratio = actual.masked_select(kept) / x.masked_select(kept);
            var scaleError = (ratio - (1 / (1 - p))).abs().max().item<float>();
            Assert.True(scaleError <= 1e-5, $"survivors must be scaled by 1/(1-p); off by {scaleError}");

            manual_seed(43);
            var other = model.forward(x);
            Assert.False(other.eq(actual).all().item<bool>(), "a different seed must drop different elements");
        }

        model.eval();
        foreach (var bucket in DropoutModelModule.Buckets)
        {
            var x = randn(bucket.Batch, bucket.Seq, 64);
            AssertParts(model.forward(x), new[] { ("Dropout (eval: identity)", x) }, 64, $"dropout eval {bucket}");
        }
    }

    // ───────────────────────────── guards ─────────────────────────────

    [Fact]
    public void ShapeOutsideTheBucketsThrowsNamingTheBuckets()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var model = Create(() => new ElementwiseModelModule(), train: false);
        foreach (var (batch, seq) in new[] { (2, 4), (3, 3), (1, 5) })
        {
            var ex = Assert.Throws<ArgumentException>(() => model.forward(randn(batch, seq, 8), randn(batch, seq, 8)));
            Assert.Contains("num_elementwise", ex.Message);
            Assert.Contains($"batch {batch} × sequence length {seq}", ex.Message);
            Assert.Contains("2×3", ex.Message);
            Assert.Contains("2×5", ex.Message);
        }
    }

    [Fact]
    public void WrongDtypeOrSecondaryShapeThrowsNamingTheInput()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var elementwise = Create(() => new ElementwiseModelModule(), train: false);
        var ex = Assert.Throws<ArgumentException>(() => elementwise.forward(randn(2, 3, 8, dtype: ScalarType.Float64), randn(2, 3, 8)));
        Assert.Equal("x", ex.ParamName);
        Assert.Contains("'x'", ex.Message);
        Assert.Contains("Float32", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => elementwise.forward(randn(2, 3, 8), randn(2, 3, 7)));
        Assert.Equal("y", ex.ParamName);
        Assert.Contains("[2, 3, 8]", ex.Message);

        var softmax = Create(() => new MatMulSoftmaxModelModule(), train: false);
        ex = Assert.Throws<ArgumentException>(() => softmax.forward(randn(2, 4, 8), randn(2, 4, 8), zeros(2, 4, 4)));
        Assert.Equal("mask", ex.ParamName);
        Assert.Contains("'mask'", ex.Message);
        Assert.Contains("[2, 1, 4]", ex.Message);

        var embedding = Create(() => new EmbeddingModelModule(), train: false);
        var ids = zeros(3, 5, dtype: ScalarType.Int64);
        ex = Assert.Throws<ArgumentException>(() => embedding.forward(ids.to_type(ScalarType.Int32), ids, tensor(new long[] { 1, 2, 3 })));
        Assert.Equal("ids", ex.ParamName);
        ex = Assert.Throws<ArgumentException>(() => embedding.forward(ids, ids, tensor(new long[] { 1, 2 })));
        Assert.Equal("validLength", ex.ParamName);
        Assert.Contains("'validLength'", ex.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ForwardLeavesNoLiveTensorsBehind(bool train)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var model = Create(() => new EncoderModelModule(), train);
        var bucket = EncoderModelModule.Buckets[1];
        var x = randn(bucket.Batch, bucket.Seq, 16);
        var lengths = tensor(new long[] { bucket.Seq, 2 });
        model.forward(x, lengths).Dispose(); // warm-up

        // Live tensors of this thread: the forward's only survivor is its result.
        var stats = DisposeScopeManager.Statistics.TensorStatistics;
        var before = stats.ThreadTotalLiveCount;
        var probe = randn(1); // the counter does count this thread's tensors
        Assert.Equal(before + 1, stats.ThreadTotalLiveCount);
        probe.Dispose();
        Assert.Equal(before, stats.ThreadTotalLiveCount);
        var y = model.forward(x, lengths);
        Assert.Equal(before + 1, stats.ThreadTotalLiveCount);
        y.Dispose();
        Assert.Equal(before, stats.ThreadTotalLiveCount);
    }

    // ───────────────────────────── references (plain TorchSharp, no Kernels) ─────────────────────────────

    private static Tensor LinearByHand(Tensor x, Tensor weight, Tensor? bias)
    {
        var y = matmul(x, weight.t());
        return bias is null ? y : y + bias;
    }

    private static Tensor BatchedMatMulByHand(Tensor a, Tensor b) => (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2);

    private static Tensor GeluByHand(Tensor x) => x * 0.5 * (1 + (x / Math.Sqrt(2)).erf());

    private static Tensor TanhByHand(Tensor x)
    {
        var e = (x * 2).exp();
        return (e - 1) / (e + 1);
    }

    private static Tensor SoftmaxByHand(Tensor x)
    {
        var e = (x - x.amax(new long[] { -1 }, keepdim: true)).exp();
        return e / e.sum(-1, keepdim: true);
    }

    private static Tensor LayerNormByHand(Tensor x, Tensor weight, Tensor bias, double eps)
    {
        var mean = x.mean(new long[] { -1 }, keepdim: true);
        var centered = x - mean;
        var variance = (centered * centered).mean(new long[] { -1 }, keepdim: true);
        return (centered / (variance + eps).sqrt() * weight) + bias;
    }

    private static Tensor GatherRows(Tensor table, Tensor ids)
    {
        var rows = ids.data<long>().ToArray().Select(i => table[i]).ToArray();
        return stack(rows).reshape(ids.shape.Append(table.shape[1]).ToArray());
    }

    /// <summary>[batch, 1, 1, seq]: 0 below the length, float32's lowest finite value elsewhere.</summary>
    private static Tensor LengthMaskByHand(long[] lengths, long seq)
    {
        var values = new float[lengths.Length * seq];
        for (var b = 0; b < lengths.Length; b++)
        {
            for (var j = 0; j < seq; j++)
            {
                values[(b * seq) + j] = j < lengths[b] ? 0f : float.MinValue;
            }
        }

        return tensor(values).reshape(lengths.Length, 1, 1, seq);
    }

    /// <summary>softmax(QKᵀ/√d + mask)V per head, with dropout on the probabilities in training.</summary>
    private static Tensor AttentionByHand(Tensor q, Tensor k, Tensor v, Tensor mask, int heads, double dropout, bool train)
    {
        long b = q.shape[0], s = q.shape[1], hidden = q.shape[2], d = hidden / heads;
        Tensor Split(Tensor t) => t.reshape(b, s, heads, d).permute(0, 2, 1, 3);
        var scores = matmul(Split(q), Split(k).transpose(-2, -1)) / Math.Sqrt(d);
        var probs = SoftmaxByHand(scores + mask);
        if (train)
        {
            probs = F.dropout(probs, dropout, training: true);
        }

        return matmul(probs, Split(v)).permute(0, 2, 1, 3).reshape(b, s, hidden);
    }

    /// <summary>BERT's post-LN layer. Random ops in the generated code's order: attention probabilities, attention
    /// output, FFN output.</summary>
    private static Tensor EncoderLayerByHand(Tensor x, Tensor mask, IReadOnlyDictionary<string, Tensor> p, string prefix, int heads, double dropout, bool train)
    {
        Tensor Dense(Tensor t, string name) => LinearByHand(t, p[prefix + name + ".weight"], p[prefix + name + ".bias"]);
        Tensor Drop(Tensor t) => train ? F.dropout(t, dropout, training: true) : t;
        Tensor Norm(Tensor t, string name) => LayerNormByHand(t, p[prefix + name + ".weight"], p[prefix + name + ".bias"], 1e-12);
        var context = AttentionByHand(Dense(x, "attention.self.query"), Dense(x, "attention.self.key"), Dense(x, "attention.self.value"), mask, heads, dropout, train);
        var h = Norm(x + Drop(Dense(context, "attention.output.dense")), "attention.output.LayerNorm");
        var up = GeluByHand(Dense(h, "intermediate.dense"));
        return Norm(h + Drop(Dense(up, "output.dense")), "output.LayerNorm");
    }

    // ───────────────────────────── helpers ─────────────────────────────

    private static T Create<T>(Func<T> create, bool train)
        where T : nn.Module
    {
        manual_seed(1234);
        var model = create();
        if (train)
        {
            model.train();
        }
        else
        {
            model.eval();
        }

        return model;
    }

    /// <summary>Randomises every parameter (so zero biases and unit gains don't hide mistakes) and returns them by name;
    /// packed parameters are also split into the checkpoint tensors they hold, per the PackedParameters table.</summary>
    private static Dictionary<string, Tensor> Params(nn.Module model, IReadOnlyList<PackedParameter> packed)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (no_grad())
        {
            foreach (var (name, parameter) in model.named_parameters())
            {
                parameter.copy_(randn(parameter.shape) * 0.5);
                result[name] = parameter.detach();
            }
        }

        foreach (var pack in packed)
        {
            var offset = 0L;
            for (var i = 0; i < pack.Parts.Count; i++)
            {
                result[pack.Parts[i]] = result[pack.Name].narrow(0, offset, pack.Sizes[i]);
                offset += pack.Sizes[i];
            }

            Assert.Equal(result[pack.Name].shape[0], offset);
        }

        return result;
    }

    /// <summary>In train mode the output must differ from the dropout-free reference (so the seeded comparison is not
    /// vacuously comparing two identities); in eval mode the comparison above already was against it.</summary>
    private static void AssertDropoutHappened(bool train, Tensor actual, Func<Tensor> withoutDropout)
    {
        if (train)
        {
            var change = (actual - withoutDropout()).abs().max().item<float>();
            Assert.True(change > 1e-3, $"train mode output equals the dropout-free reference (max change {change})");
        }
    }

    private void AssertParts(Tensor actual, (string Op, Tensor Expected)[] parts, long width, string what) =>
        AssertParts(actual, parts, parts.Select(_ => width).ToArray(), what);

    /// <summary>Compares consecutive slices of the last dimension of <paramref name="actual"/> with each part.</summary>
    private void AssertParts(Tensor actual, (string Op, Tensor Expected)[] parts, long[] widths, string what, ScalarType dtype = ScalarType.Float32)
    {
        Assert.Equal(dtype, actual.dtype);
        Assert.Equal(widths.Sum(), actual.shape[^1]);
        var offset = 0L;
        for (var i = 0; i < parts.Length; i++)
        {
            var got = actual.narrow(-1, offset, widths[i]);
            var expected = parts[i].Expected;
            Assert.Equal(expected.shape, got.shape);
            var diff = (got - expected).abs().max().to_type(ScalarType.Float64).item<double>();
            _output.WriteLine($"{what}: {parts[i].Op}: max |diff| = {diff:E2}");
            Assert.True(diff <= Tolerance, $"{what}: {parts[i].Op}: max |generated − reference| = {diff} > {Tolerance}");
            offset += widths[i];
        }
    }
}
