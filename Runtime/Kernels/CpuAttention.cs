using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>Inference attention softmax(q·kᵀ/√d + mask)·v on CPU float32, fused per (batch, head) and written for
/// AVX-512: libtorch's CPU scaled_dot_product_attention runs BERT-size heads (d = 32–64) at well under GEMM speed.
/// q, k and v are read through their strides (the generated code passes permuted views of the projections), and the
/// result is laid out as [batch, seq, heads, headDim], so the generated code's permute + reshape after it is free.
/// The loops are marked AggressiveOptimization: tiered compilation would start them unoptimised, and the first few
/// calls would take ~10× as long.</summary>
internal static class CpuAttention
{
    /// <summary>A key whose additive mask is at or below this contributes exp(≈ −1e30) = 0 next to any key above it,
    /// so trailing keys masked this way (the padding under a length mask) are skipped rather than computed.</summary>
    private const float Removed = -1e30f;

    /// <summary>Below this many multiply-adds a second thread costs more than it saves.</summary>
    private const long ParallelThreshold = 1 << 20;

    /// <summary>Query rows per block: the kernels keep 8 rows × 32 columns of scores or output in registers.</summary>
    private const int RowBlock = 8;

    private const double Log2E = 1.4426950408889634;

    /// <summary>Per-thread work memory (Kᵀ, a block of probabilities, the mask in log₂ units, padded V); pinned, so
    /// pointers into it stay put.</summary>
    [ThreadStatic]
    private static float[]? _scratch;

    /// <summary>Whether <see cref="Run(Tensor, Tensor, Tensor, Tensor)"/> takes these operands: CPU float32 self-attention
    /// [B, H, S, D] with unit-stride rows, a mask broadcastable as [B|1, H|1, S|1, S], nothing that needs a gradient,
    /// and AVX-512 (without it libtorch's own vectorised kernel beats the scalar fallback).</summary>
    public static bool Applies(Tensor q, Tensor k, Tensor v, Tensor mask)
    {
        if (!Avx512F.IsSupported)
        {
            return false;
        }

        Tensor[] all = [q, k, v, mask];
        if (all.Any(t => t.device_type != DeviceType.CPU || t.dtype != ScalarType.Float32 || t.dim() != 4))
        {
            return false;
        }

        if (is_grad_enabled() && all.Any(t => t.requires_grad))
        {
            return false;
        }

        var shape = q.shape;
        if (!k.shape.SequenceEqual(shape) || !v.shape.SequenceEqual(shape) || q.numel() == 0)
        {
            return false;
        }

        var (b, h, s, d) = (shape[0], shape[1], shape[2], shape[3]);
        if (s * Math.Max(d, RowBlock) > int.MaxValue / 8 || b * h > int.MaxValue)
        {
            return false;
        }

        var m = mask.shape;
        return all.All(t => t.shape[3] == 1 || t.stride(3) == 1)
            && (m[0] == 1 || m[0] == b) && (m[1] == 1 || m[1] == h) && (m[2] == 1 || m[2] == s) && m[3] == s;
    }

    /// <summary>softmax(q·kᵀ/√D + mask)·v for operands <see cref="Applies"/> accepts: [B, H, S, D] over a fresh
    /// contiguous [B, S, H, D] buffer.</summary>
    public static Tensor Run(Tensor q, Tensor k, Tensor v, Tensor mask) => Run(q, k, v, mask, Avx512F.IsSupported);

    /// <summary><paramref name="vectorized"/> false takes the scalar fallback (tests reach it on AVX-512 machines).</summary>
    internal static Tensor Run(Tensor q, Tensor k, Tensor v, Tensor mask, bool vectorized)
    {
        var (b, h, s, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]);
        using var output = empty(new[] { b, s, h, d }, ScalarType.Float32, q.device);
        var problem = new Problem(q, k, v, mask, output);
        var pairs = (int)(b * h);
        var threads = Math.Max(1, get_num_threads());
        if (threads == 1 || pairs == 1 || pairs * s * s * d < ParallelThreshold)
        {
            for (var pair = 0; pair < pairs; pair++)
            {
                problem.Pair(pair, vectorized);
            }
        }
        else
        {
            // One (batch, head) pair per work item: the team balances them when the machine is shared.
            CpuParallel.ForEach(pairs, pair => problem.Pair(pair, vectorized));
        }

        return output.permute(0, 2, 1, 3);
    }

    /// <summary>At least <paramref name="floats"/> floats of this thread's scratch, 64-byte aligned.</summary>
    private static unsafe float* Scratch(long floats)
    {
        var array = _scratch;
        if (array is null || array.Length < floats + 16)
        {
            array = GC.AllocateUninitializedArray<float>((int)(floats + 16), pinned: true);
            _scratch = array;
        }

        var address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        return (float*)((address + 63) & ~(nint)63);
    }

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;

    /// <summary>Addresses and element strides of the operands; a broadcast mask dimension has stride 0.</summary>
    private readonly struct Problem
    {
        private readonly nint _q, _k, _v, _m, _o;
        private readonly long _qB, _qH, _qS, _kB, _kH, _kS, _vB, _vH, _vS, _mB, _mH, _mS;
        private readonly int _h, _s, _d, _pairs;

        public Problem(Tensor q, Tensor k, Tensor v, Tensor mask, Tensor output)
        {
            (_q, _k, _v, _m, _o) = (TensorPointers.First(q), TensorPointers.First(k), TensorPointers.First(v), TensorPointers.First(mask), TensorPointers.First(output));
            (_qB, _qH, _qS) = (q.stride(0), q.stride(1), q.stride(2));
            (_kB, _kH, _kS) = (k.stride(0), k.stride(1), k.stride(2));
            (_vB, _vH, _vS) = (v.stride(0), v.stride(1), v.stride(2));
            _mB = mask.shape[0] == 1 ? 0 : mask.stride(0);
            _mH = mask.shape[1] == 1 ? 0 : mask.stride(1);
            _mS = mask.shape[2] == 1 ? 0 : mask.stride(2);
            (_h, _s, _d) = ((int)q.shape[1], (int)q.shape[2], (int)q.shape[3]);
            _pairs = (int)(q.shape[0] * q.shape[1]);
        }

        /// <summary>Attention of one (batch, head) pair, written to the output's [batch, :, head, :] rows.</summary>
        public unsafe void Pair(int pair, bool vectorized)
        {
            long b = pair / _h, h = pair % _h;
            var q = (float*)_q + (b * _qB) + (h * _qH);
            var k = (float*)_k + (b * _kB) + (h * _kH);
            var v = (float*)_v + (b * _vB) + (h * _vH);
            var m = (float*)_m + (b * _mB) + (h * _mH);
            var o = (float*)_o + (((b * _s * _h) + h) * _d);
            var keys = _mS == 0 ? KeptKeys(m, _s) : _s;
            if (vectorized)
            {
                PairVector(q, k, v, m, o, keys, pair + 1 < _pairs ? pair + 1 : -1);
            }
            else
            {
                PairScalar(q, k, v, m, o, keys);
            }
        }

        /// <summary>Keys up to the last one the (row-independent) mask keeps; all when it keeps none, where every score
        /// is the mask value and the softmax is uniform (or, under −∞, zero), as libtorch computes it.</summary>
        private static unsafe int KeptKeys(float* mask, int s)
        {
            var n = s;
            while (n > 0 && mask[n - 1] <= Removed)
            {
                n--;
            }

            return n == 0 ? s : n;
        }

        /// <summary>Asks for rows [from, from + count) of pair <paramref name="pair"/>'s q, k, v and output to be brought
        /// into L2. Consecutive rows of one head lie H·D or 3·H·D floats apart, too far for the hardware prefetchers, so
        /// without this each pair would start on rows missing the cache (about a fifth of the run time at MiniLM's shape).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private unsafe void Prefetch(int pair, int from, int count)
        {
            long b = pair / _h, h = pair % _h;
            var q = (float*)_q + (b * _qB) + (h * _qH);
            var k = (float*)_k + (b * _kB) + (h * _kH);
            var v = (float*)_v + (b * _vB) + (h * _vH);
            var o = (float*)_o + (((b * _s * _h) + h) * _d);
            for (var i = from; i < from + count; i++)
            {
                for (var e = 0; e < _d; e += 16)
                {
                    Sse.Prefetch1(q + (i * _qS) + e);
                    Sse.Prefetch1(k + (i * _kS) + e);
                    Sse.Prefetch1(v + (i * _vS) + e);
                    Sse.Prefetch1(o + ((long)i * _h * _d) + e);
                }
            }
        }

        /// <summary>Kᵀ into scratch once, then per block of 8 query rows: scores in log₂ units with their row maxima,
        /// 2^(score − max) in place, P·V normalised by 1 / row sum into the output. Meanwhile the rows of pair
        /// <paramref name="next"/> (−1: none) are prefetched, a block's worth per block.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private unsafe void PairVector(float* q, float* k, float* v, float* m, float* o, int keys, int next)
        {
            var (s, d) = (_s, _d);
            var ldk = RoundUp(keys, 16);
            var ldv = RoundUp(d, 32);
            var direct = d % 32 == 0; // V rows and output rows are whole 32-float chunks: used in place
            var kt = Scratch(((long)d * ldk) + (2 * RowBlock * ldk) + (direct ? 0 : ((long)keys + RowBlock) * ldv));
            var probs = kt + ((long)d * ldk);
            var masks = probs + (RowBlock * ldk);
            var padded = masks + (RowBlock * ldk);
            var staging = padded + ((long)keys * ldv);

            Transpose(k, _kS, keys, d, kt, ldk);
            var values = v;
            var valueStride = _vS;
            if (!direct)
            {
                for (var j = 0; j < keys; j++)
                {
                    var target = new Span<float>(padded + ((long)j * ldv), ldv);
                    new Span<float>(v + (j * _vS), d).CopyTo(target);
                    target[d..].Clear();
                }

                values = padded;
                valueStride = ldv;
            }

            // A mask shared by all query rows is converted once per pair, a per-row one per block.
            var maskStride = _mS == 0 ? 0 : ldk;
            if (_mS == 0)
            {
                MaskInLog2(m, keys, ldk, masks);
            }

            var scale = Vector512.Create((float)(Log2E / Math.Sqrt(d)));
            var outStride = (long)_h * d;
            var highest = stackalloc Vector512<float>[RowBlock];
            var inverse = stackalloc float[RowBlock];
            for (var i0 = 0; i0 < s; i0 += RowBlock)
            {
                var rows = Math.Min(RowBlock, s - i0);
                if (next >= 0)
                {
                    Prefetch(next, i0, rows);
                }

                for (var r = 0; r < rows; r++)
                {
                    highest[r] = Vector512.Create(float.NegativeInfinity);
                    if (_mS != 0)
                    {
                        MaskInLog2(m + ((i0 + r) * _mS), keys, ldk, masks + (r * ldk));
                    }
                }

                var row = 0;
                if (rows == RowBlock)
                {
                    Scores8(q + (i0 * _qS), _qS, kt, ldk, d, probs, masks, maskStride, highest, scale);
                    row = RowBlock;
                }

                for (; row + 4 <= rows; row += 4)
                {
                    Scores4(q + ((i0 + row) * _qS), _qS, kt, ldk, d, probs + (row * ldk), masks + (row * maskStride), maskStride, highest + row, scale, 0);
                }

                for (; row < rows; row++)
                {
                    Scores1(q + ((i0 + row) * _qS), kt, ldk, d, probs + (row * ldk), masks + (row * maskStride), highest + row, scale);
                }

                Exponentiate(probs, ldk, rows, highest, inverse);

                var target = direct ? o + (i0 * outStride) : staging;
                var targetStride = direct ? outStride : ldv;
                if (rows == RowBlock)
                {
                    Mix8(probs, ldk, values, valueStride, keys, ldv / 32, inverse, target, targetStride);
                }
                else
                {
                    for (var r = 0; r < rows; r++)
                    {
                        Mix1(probs + (r * ldk), values, valueStride, keys, ldv / 32, inverse[r], target + (r * targetStride));
                    }
                }

                if (!direct)
                {
                    for (var r = 0; r < rows; r++)
                    {
                        new Span<float>(staging + ((long)r * ldv), d).CopyTo(new Span<float>(o + ((i0 + r) * outStride), d));
                    }
                }
            }
        }

        /// <summary>The plain loops, for machines without AVX-512 (same masking rules, e-based softmax).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private unsafe void PairScalar(float* q, float* k, float* v, float* m, float* o, int keys)
        {
            var (s, d) = (_s, _d);
            var scale = (float)(1 / Math.Sqrt(d));
            var probs = Scratch(keys);
            var outStride = (long)_h * d;
            for (var i = 0; i < s; i++)
            {
                float* qi = q + (i * _qS), mi = m + (i * _mS), oi = o + (i * outStride);
                var max = float.NegativeInfinity;
                for (var j = 0; j < keys; j++)
                {
                    var kj = k + (j * _kS);
                    var dot = 0f;
                    for (var e = 0; e < d; e++)
                    {
                        dot = MathF.FusedMultiplyAdd(qi[e], kj[e], dot);
                    }

                    probs[j] = MathF.FusedMultiplyAdd(dot, scale, mi[j]);
                    max = MathF.Max(max, probs[j]);
                }

                // A row masked entirely with −∞ has no finite score: it sums to 0 and comes out 0, as in libtorch.
                var shift = max == float.NegativeInfinity ? 0 : max;
                var sum = 0f;
                for (var j = 0; j < keys; j++)
                {
                    probs[j] = MathF.Exp(probs[j] - shift);
                    sum += probs[j];
                }

                new Span<float>(oi, d).Clear();
                for (var j = 0; j < keys; j++)
                {
                    var vj = v + (j * _vS);
                    for (var e = 0; e < d; e++)
                    {
                        oi[e] = MathF.FusedMultiplyAdd(probs[j], vj[e], oi[e]);
                    }
                }

                var inverse = sum == 0 ? 0 : 1 / sum;
                for (var e = 0; e < d; e++)
                {
                    oi[e] *= inverse;
                }
            }
        }
    }

    /// <summary>target[j] = mask[j]·log₂ e for j &lt; keys and −∞ in the padding up to ldk. A finite mask stays finite
    /// (float.MinValue·log₂ e would overflow), so a row masked entirely with it still has equal scores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void MaskInLog2(float* mask, int keys, int ldk, float* target)
    {
        var (factor, lowest) = (Vector512.Create((float)Log2E), Vector512.Create(float.MinValue));
        var j = 0;
        for (; j + 16 <= keys; j += 16)
        {
            var value = Vector512.Load(mask + j);
            var scaled = Vector512.MaxNative(lowest, value * factor);
            Vector512.ConditionalSelect(Vector512.Equals(value, Vector512.Create(float.NegativeInfinity)), value, scaled).Store(target + j);
        }

        for (; j < keys; j++)
        {
            var value = mask[j];
            target[j] = value == float.NegativeInfinity ? value : MathF.Max(value * (float)Log2E, float.MinValue);
        }

        new Span<float>(target + keys, ldk - keys).Fill(float.NegativeInfinity);
    }

    /// <summary>kt[e, j] = k[j, e] for j &lt; keys, e &lt; d, zero for keys ≤ j &lt; ldk: 16×16 tiles through registers, the
    /// edges element by element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Transpose(float* k, long ks, int keys, int d, float* kt, int ldk)
    {
        var (fullKeys, fullDims) = (keys / 16 * 16, d / 16 * 16);
        for (var j = 0; j < fullKeys; j += 16)
        {
            for (var e = 0; e < fullDims; e += 16)
            {
                Transpose16(k + (j * ks) + e, ks, kt + ((long)e * ldk) + j, ldk);
            }
        }

        for (var j = 0; j < keys; j++)
        {
            var row = k + (j * ks);
            for (var e = j < fullKeys ? fullDims : 0; e < d; e++)
            {
                kt[((long)e * ldk) + j] = row[e];
            }
        }

        for (var e = 0; e < d; e++)
        {
            new Span<float>(kt + ((long)e * ldk) + keys, ldk - keys).Clear();
        }
    }

    /// <summary>Transposes the 16×16 tile at <paramref name="source"/> (row stride <paramref name="ss"/>) into
    /// <paramref name="target"/> (row stride <paramref name="ts"/>): interleave row pairs, then pairs of pairs, then
    /// gather each 128-bit lane across the four groups of four rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Transpose16(float* source, long ss, float* target, long ts)
    {
        Pairs(source, ss, out var t0, out var t1);
        Pairs(source + (2 * ss), ss, out var t2, out var t3);
        Pairs(source + (4 * ss), ss, out var t4, out var t5);
        Pairs(source + (6 * ss), ss, out var t6, out var t7);
        Pairs(source + (8 * ss), ss, out var t8, out var t9);
        Pairs(source + (10 * ss), ss, out var t10, out var t11);
        Pairs(source + (12 * ss), ss, out var t12, out var t13);
        Pairs(source + (14 * ss), ss, out var t14, out var t15);

        // Per 128-bit lane, uG_c holds the lane's column c for rows 4G..4G+3.
        Quads(t0, t1, t2, t3, out var u00, out var u01, out var u02, out var u03);
        Quads(t4, t5, t6, t7, out var u10, out var u11, out var u12, out var u13);
        Quads(t8, t9, t10, t11, out var u20, out var u21, out var u22, out var u23);
        Quads(t12, t13, t14, t15, out var u30, out var u31, out var u32, out var u33);

        // Output row 4L + c is lane L of u0_c, u1_c, u2_c, u3_c.
        Lanes(u00, u10, u20, u30, target, ts);
        Lanes(u01, u11, u21, u31, target + ts, ts);
        Lanes(u02, u12, u22, u32, target + (2 * ts), ts);
        Lanes(u03, u13, u23, u33, target + (3 * ts), ts);
    }

    /// <summary>Rows a, b → per 128-bit lane (a0 b0 a1 b1) and (a2 b2 a3 b3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Pairs(float* source, long ss, out Vector512<float> low, out Vector512<float> high)
    {
        var a = Vector512.Load(source);
        var b = Vector512.Load(source + ss);
        low = Avx512F.UnpackLow(a, b);
        high = Avx512F.UnpackHigh(a, b);
    }

    /// <summary>Two row pairs → per lane, the lane's column 0, 1, 2, 3 for the four rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quads(Vector512<float> low01, Vector512<float> high01, Vector512<float> low23, Vector512<float> high23,
        out Vector512<float> c0, out Vector512<float> c1, out Vector512<float> c2, out Vector512<float> c3)
    {
        c0 = Avx512F.UnpackLow(low01.AsDouble(), low23.AsDouble()).AsSingle();
        c1 = Avx512F.UnpackHigh(low01.AsDouble(), low23.AsDouble()).AsSingle();
        c2 = Avx512F.UnpackLow(high01.AsDouble(), high23.AsDouble()).AsSingle();
        c3 = Avx512F.UnpackHigh(high01.AsDouble(), high23.AsDouble()).AsSingle();
    }

    /// <summary>Stores lane L of (a, b, c, d) as the row at target + 4L·ts, for L = 0..3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Lanes(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, float* target, long ts)
    {
        var low = Avx512F.Shuffle4x128(a, b, 0x44); // a0 a1 b0 b1
        var high = Avx512F.Shuffle4x128(a, b, 0xEE); // a2 a3 b2 b3
        var low2 = Avx512F.Shuffle4x128(c, d, 0x44);
        var high2 = Avx512F.Shuffle4x128(c, d, 0xEE);
        Avx512F.Shuffle4x128(low, low2, 0x88).Store(target); // a0 b0 c0 d0
        Avx512F.Shuffle4x128(low, low2, 0xDD).Store(target + (4 * ts));
        Avx512F.Shuffle4x128(high, high2, 0x88).Store(target + (8 * ts));
        Avx512F.Shuffle4x128(high, high2, 0xDD).Store(target + (12 * ts));
    }

    /// <summary>Scores of 8 query rows (stride <paramref name="qs"/>) against all ldk columns of Kᵀ in log₂ units,
    /// s·scale + mask, into 8 rows of <paramref name="dst"/> (stride ldk), raising each row's running maximum: 8 rows ×
    /// 32 columns per pass, so each Kᵀ load feeds 8 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Scores8(float* q, long qs, float* kt, int ldk, int d, float* dst, float* mask, long ms,
        Vector512<float>* highest, Vector512<float> scale)
    {
        var c = 0;
        for (; c + 32 <= ldk; c += 32)
        {
            Vector512<float> a00 = default, a01 = default, a10 = default, a11 = default;
            Vector512<float> a20 = default, a21 = default, a30 = default, a31 = default;
            Vector512<float> a40 = default, a41 = default, a50 = default, a51 = default;
            Vector512<float> a60 = default, a61 = default, a70 = default, a71 = default;
            var column = kt + c;
            var x0 = q;
            for (var e = 0; e < d; e++, column += ldk, x0++)
            {
                var k0 = Vector512.Load(column);
                var k1 = Vector512.Load(column + 16);
                var x = Vector512.Create(x0[0]);
                a00 = Fma(x, k0, a00);
                a01 = Fma(x, k1, a01);
                x = Vector512.Create(x0[qs]);
                a10 = Fma(x, k0, a10);
                a11 = Fma(x, k1, a11);
                x = Vector512.Create(x0[2 * qs]);
                a20 = Fma(x, k0, a20);
                a21 = Fma(x, k1, a21);
                x = Vector512.Create(x0[3 * qs]);
                a30 = Fma(x, k0, a30);
                a31 = Fma(x, k1, a31);
                x = Vector512.Create(x0[4 * qs]);
                a40 = Fma(x, k0, a40);
                a41 = Fma(x, k1, a41);
                x = Vector512.Create(x0[5 * qs]);
                a50 = Fma(x, k0, a50);
                a51 = Fma(x, k1, a51);
                x = Vector512.Create(x0[6 * qs]);
                a60 = Fma(x, k0, a60);
                a61 = Fma(x, k1, a61);
                x = Vector512.Create(x0[7 * qs]);
                a70 = Fma(x, k0, a70);
                a71 = Fma(x, k1, a71);
            }

            float* target = dst + c, m = mask + c;
            Finish(target, m, scale, highest, a00, a01);
            Finish(target + ldk, m + ms, scale, highest + 1, a10, a11);
            Finish(target + (2 * ldk), m + (2 * ms), scale, highest + 2, a20, a21);
            Finish(target + (3 * ldk), m + (3 * ms), scale, highest + 3, a30, a31);
            Finish(target + (4 * ldk), m + (4 * ms), scale, highest + 4, a40, a41);
            Finish(target + (5 * ldk), m + (5 * ms), scale, highest + 5, a50, a51);
            Finish(target + (6 * ldk), m + (6 * ms), scale, highest + 6, a60, a61);
            Finish(target + (7 * ldk), m + (7 * ms), scale, highest + 7, a70, a71);
        }

        if (c < ldk)
        {
            Scores4(q, qs, kt, ldk, d, dst, mask, ms, highest, scale, c);
            Scores4(q + (4 * qs), qs, kt, ldk, d, dst + (4 * ldk), mask + (4 * ms), ms, highest + 4, scale, c);
        }
    }

    /// <summary><see cref="Scores8"/> for 4 rows from column <paramref name="c"/> on: 4 rows × 64 columns per pass,
    /// then 16 at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Scores4(float* q, long qs, float* kt, int ldk, int d, float* dst, float* mask, long ms,
        Vector512<float>* highest, Vector512<float> scale, int c)
    {
        float* q0 = q, q1 = q + qs, q2 = q + (2 * qs), q3 = q + (3 * qs);
        for (; c + 64 <= ldk; c += 64)
        {
            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
            Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
            Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
            var column = kt + c;
            for (var e = 0; e < d; e++, column += ldk)
            {
                var k0 = Vector512.Load(column);
                var k1 = Vector512.Load(column + 16);
                var k2 = Vector512.Load(column + 32);
                var k3 = Vector512.Load(column + 48);
                var x = Vector512.Create(q0[e]);
                a00 = Fma(x, k0, a00);
                a01 = Fma(x, k1, a01);
                a02 = Fma(x, k2, a02);
                a03 = Fma(x, k3, a03);
                x = Vector512.Create(q1[e]);
                a10 = Fma(x, k0, a10);
                a11 = Fma(x, k1, a11);
                a12 = Fma(x, k2, a12);
                a13 = Fma(x, k3, a13);
                x = Vector512.Create(q2[e]);
                a20 = Fma(x, k0, a20);
                a21 = Fma(x, k1, a21);
                a22 = Fma(x, k2, a22);
                a23 = Fma(x, k3, a23);
                x = Vector512.Create(q3[e]);
                a30 = Fma(x, k0, a30);
                a31 = Fma(x, k1, a31);
                a32 = Fma(x, k2, a32);
                a33 = Fma(x, k3, a33);
            }

            float* target = dst + c, m = mask + c;
            Finish(target, m, scale, highest, a00, a01);
            Finish(target + 32, m + 32, scale, highest, a02, a03);
            Finish(target + ldk, m + ms, scale, highest + 1, a10, a11);
            Finish(target + ldk + 32, m + ms + 32, scale, highest + 1, a12, a13);
            Finish(target + (2 * ldk), m + (2 * ms), scale, highest + 2, a20, a21);
            Finish(target + (2 * ldk) + 32, m + (2 * ms) + 32, scale, highest + 2, a22, a23);
            Finish(target + (3 * ldk), m + (3 * ms), scale, highest + 3, a30, a31);
            Finish(target + (3 * ldk) + 32, m + (3 * ms) + 32, scale, highest + 3, a32, a33);
        }

        for (; c < ldk; c += 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            var column = kt + c;
            for (var e = 0; e < d; e++, column += ldk)
            {
                var kv = Vector512.Load(column);
                a0 = Fma(Vector512.Create(q0[e]), kv, a0);
                a1 = Fma(Vector512.Create(q1[e]), kv, a1);
                a2 = Fma(Vector512.Create(q2[e]), kv, a2);
                a3 = Fma(Vector512.Create(q3[e]), kv, a3);
            }

            Finish(dst + c, mask + c, scale, highest, a0);
            Finish(dst + ldk + c, mask + ms + c, scale, highest + 1, a1);
            Finish(dst + (2 * ldk) + c, mask + (2 * ms) + c, scale, highest + 2, a2);
            Finish(dst + (3 * ldk) + c, mask + (3 * ms) + c, scale, highest + 3, a3);
        }
    }

    /// <summary><see cref="Scores8"/> for one row (the rows a block of 4 leaves over).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Scores1(float* q, float* kt, int ldk, int d, float* dst, float* mask, Vector512<float>* highest,
        Vector512<float> scale)
    {
        var c = 0;
        for (; c + 64 <= ldk; c += 64)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            var column = kt + c;
            for (var e = 0; e < d; e++, column += ldk)
            {
                var x = Vector512.Create(q[e]);
                a0 = Fma(x, Vector512.Load(column), a0);
                a1 = Fma(x, Vector512.Load(column + 16), a1);
                a2 = Fma(x, Vector512.Load(column + 32), a2);
                a3 = Fma(x, Vector512.Load(column + 48), a3);
            }

            Finish(dst + c, mask + c, scale, highest, a0, a1);
            Finish(dst + c + 32, mask + c + 32, scale, highest, a2, a3);
        }

        for (; c < ldk; c += 16)
        {
            var a = Vector512<float>.Zero;
            var column = kt + c;
            for (var e = 0; e < d; e++, column += ldk)
            {
                a = Fma(Vector512.Create(q[e]), Vector512.Load(column), a);
            }

            Finish(dst + c, mask + c, scale, highest, a);
        }
    }

    /// <summary>Stores 16 scores acc·scale + mask and raises the row's running maximum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Finish(float* target, float* mask, Vector512<float> scale, Vector512<float>* highest, Vector512<float> acc)
    {
        var t = Fma(acc, scale, Vector512.Load(mask));
        t.Store(target);
        *highest = Vector512.MaxNative(*highest, t);
    }

    /// <summary><see cref="Finish(float*, float*, Vector512{float}, Vector512{float}*, Vector512{float})"/> for 32 scores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Finish(float* target, float* mask, Vector512<float> scale, Vector512<float>* highest,
        Vector512<float> acc0, Vector512<float> acc1)
    {
        var t0 = Fma(acc0, scale, Vector512.Load(mask));
        var t1 = Fma(acc1, scale, Vector512.Load(mask + 16));
        t0.Store(target);
        t1.Store(target + 16);
        *highest = Vector512.MaxNative(*highest, Vector512.MaxNative(t0, t1));
    }

    /// <summary>Turns <paramref name="rows"/> rows of scores (log₂ units, −∞ in the padding) into 2^(score − row max) and
    /// sets inverse[r] = 1 / row r's sum, applied after P·V. A row with no finite score (all −∞) sums to 0 and comes out
    /// 0, as in libtorch. The rows' reductions are done side by side, so their latencies overlap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Exponentiate(float* probs, int ldk, int rows, Vector512<float>* highest, float* inverse)
    {
        var shift = stackalloc float[RowBlock];
        for (var r = 0; r < rows; r++)
        {
            var max = VectorMath.MaxAcross(highest[r]);
            shift[r] = max == float.NegativeInfinity ? 0 : max;
        }

        for (var r = 0; r < rows; r++)
        {
            var row = probs + (r * ldk);
            var by = Vector512.Create(shift[r]);
            var sum = Vector512<float>.Zero;
            for (var j = 0; j < ldk; j += 16)
            {
                var p = VectorMath.Exp2(Vector512.Load(row + j) - by);
                p.Store(row + j);
                sum += p;
            }

            highest[r] = sum;
        }

        for (var r = 0; r < rows; r++)
        {
            var total = Vector512.Sum(highest[r]);
            inverse[r] = total == 0 ? 0 : 1 / total;
        }
    }

    /// <summary>O[r, :] = inverse[r] · Σⱼ P[r, j]·V[j, :] for 8 rows, 32 output columns at a time (16 accumulators; each
    /// V load feeds 8 FMAs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Mix8(float* probs, int ldp, float* v, long vs, int keys, int chunks, float* inverse, float* o, long os)
    {
        for (var c = 0; c < chunks; c++)
        {
            Vector512<float> a00 = default, a01 = default, a10 = default, a11 = default;
            Vector512<float> a20 = default, a21 = default, a30 = default, a31 = default;
            Vector512<float> a40 = default, a41 = default, a50 = default, a51 = default;
            Vector512<float> a60 = default, a61 = default, a70 = default, a71 = default;
            var row = v + (c * 32);
            var p = probs;
            for (var j = 0; j < keys; j++, row += vs, p++)
            {
                var v0 = Vector512.Load(row);
                var v1 = Vector512.Load(row + 16);
                var x = Vector512.Create(p[0]);
                a00 = Fma(x, v0, a00);
                a01 = Fma(x, v1, a01);
                x = Vector512.Create(p[ldp]);
                a10 = Fma(x, v0, a10);
                a11 = Fma(x, v1, a11);
                x = Vector512.Create(p[2 * ldp]);
                a20 = Fma(x, v0, a20);
                a21 = Fma(x, v1, a21);
                x = Vector512.Create(p[3 * ldp]);
                a30 = Fma(x, v0, a30);
                a31 = Fma(x, v1, a31);
                x = Vector512.Create(p[4 * ldp]);
                a40 = Fma(x, v0, a40);
                a41 = Fma(x, v1, a41);
                x = Vector512.Create(p[5 * ldp]);
                a50 = Fma(x, v0, a50);
                a51 = Fma(x, v1, a51);
                x = Vector512.Create(p[6 * ldp]);
                a60 = Fma(x, v0, a60);
                a61 = Fma(x, v1, a61);
                x = Vector512.Create(p[7 * ldp]);
                a70 = Fma(x, v0, a70);
                a71 = Fma(x, v1, a71);
            }

            var target = o + (c * 32);
            Store2(target, inverse[0], a00, a01);
            Store2(target + os, inverse[1], a10, a11);
            Store2(target + (2 * os), inverse[2], a20, a21);
            Store2(target + (3 * os), inverse[3], a30, a31);
            Store2(target + (4 * os), inverse[4], a40, a41);
            Store2(target + (5 * os), inverse[5], a50, a51);
            Store2(target + (6 * os), inverse[6], a60, a61);
            Store2(target + (7 * os), inverse[7], a70, a71);
        }
    }

    /// <summary>One output row of P·V (the rows a block of 8 leaves over).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Mix1(float* probs, float* v, long vs, int keys, int chunks, float inverse, float* o)
    {
        for (var c = 0; c < chunks; c++)
        {
            Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default;
            var row = v + (c * 32);
            var j = 0;

            // Two keys per step: two independent accumulator pairs hide the FMA latency.
            for (; j + 2 <= keys; j += 2, row += 2 * vs)
            {
                var x = Vector512.Create(probs[j]);
                var y = Vector512.Create(probs[j + 1]);
                a0 = Fma(x, Vector512.Load(row), a0);
                a1 = Fma(x, Vector512.Load(row + 16), a1);
                b0 = Fma(y, Vector512.Load(row + vs), b0);
                b1 = Fma(y, Vector512.Load(row + vs + 16), b1);
            }

            if (j < keys)
            {
                var x = Vector512.Create(probs[j]);
                a0 = Fma(x, Vector512.Load(row), a0);
                a1 = Fma(x, Vector512.Load(row + 16), a1);
            }

            Store2(o + (c * 32), inverse, a0 + b0, a1 + b1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        Vector512.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store2(float* target, float scale, Vector512<float> a, Vector512<float> b)
    {
        var factor = Vector512.Create(scale);
        (a * factor).Store(target);
        (b * factor).Store(target + 16);
    }
}
