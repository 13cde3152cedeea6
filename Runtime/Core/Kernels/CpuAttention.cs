using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>Inference attention softmax(q·kᵀ/√d + mask)·v on CPU float32, fused per (batch, head), written once over
/// <see cref="IFloatVector{TSelf}"/> and run at the CPU's vector width: libtorch's CPU scaled_dot_product_attention
/// runs BERT-size heads (d = 32–64) at well under GEMM speed. q, k and v are read through their strides (the generated
/// code passes permuted views of the projections), and the result is laid out as [batch, seq, heads, headDim], so the
/// generated code's permute + reshape after it is free. The register tiles follow the register file: 8 query rows ×
/// 2 vectors of keys (16 accumulators) where vectors are 512-bit (32 registers), 4 × 2 (8 accumulators) at 256 and
/// 128 bits (16 registers). The loops are marked AggressiveOptimization: tiered compilation would start them
/// unoptimised, and the first few calls would take ~10× as long.</summary>
internal static class CpuAttention
{
    /// <summary>A key whose additive mask is at or below this contributes exp(≈ −1e30) = 0 next to any key above it,
    /// so trailing keys masked this way (the padding under a length mask) are skipped rather than computed.</summary>
    private const float Removed = -1e30f;

    /// <summary>Below this many multiply-adds a second thread costs more than it saves.</summary>
    private const long ParallelThreshold = 1 << 20;

    /// <summary>Query rows per block: the probabilities of a block are computed, exponentiated and mixed together.</summary>
    private const int RowBlock = 8;

    private const double Log2E = 1.4426950408889634;

    /// <summary>Per-thread work memory (Kᵀ, a block of probabilities, the mask in log₂ units, padded V); pinned, so
    /// pointers into it stay put.</summary>
    [ThreadStatic]
    private static float[]? _scratch;

    /// <summary>Whether <see cref="Run(Tensor, Tensor, Tensor, Tensor)"/> takes these operands: CPU float32 self-attention
    /// [B, H, S, D] with unit-stride rows, a mask broadcastable as [B|1, H|1, S|1, S], nothing that needs a gradient,
    /// and vector loops available (without them libtorch's own kernel is the better choice).</summary>
    public static bool Applies(Tensor q, Tensor k, Tensor v, Tensor mask)
    {
        if (!VectorWidth.IsAccelerated)
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
    public static Tensor Run(Tensor q, Tensor k, Tensor v, Tensor mask)
    {
        var (b, h, s, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]);
        using var output = empty(new[] { b, s, h, d }, ScalarType.Float32, q.device);
        var problem = new Problem(q, k, v, mask, output);
        var pairs = (int)(b * h);
        var bits = VectorWidth.Current;
        var threads = Math.Max(1, get_num_threads());
        if (threads == 1 || pairs == 1 || pairs * s * s * d < ParallelThreshold)
        {
            for (var pair = 0; pair < pairs; pair++)
            {
                problem.Pair(pair, bits);
            }
        }
        else
        {
            // One (batch, head) pair per work item: the team balances them when the machine is shared.
            CpuParallel.ForEach(pairs, pair => problem.Pair(pair, bits));
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

    /// <summary>Running maxima (one vector per query row of a block) and the block's 1/row-sum factors.</summary>
    [InlineArray(RowBlock)]
    private struct RowVectors<TV>
        where TV : struct, IFloatVector<TV>
    {
        private TV _element;
    }

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

        /// <summary>Attention of one (batch, head) pair at <paramref name="bits"/>, written to the output's
        /// [batch, :, head, :] rows.</summary>
        public void Pair(int pair, int bits)
        {
            var kernel = new PairKernel(this, pair);
            VectorWidth.Run(ref kernel, bits);
        }

        private readonly struct PairKernel(Problem problem, int pair) : IVectorKernel
        {
            public void Run<TV>()
                where TV : struct, IFloatVector<TV> => problem.PairVector<TV>(pair);
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
            if (!Sse.IsSupported)
            {
                return;
            }

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
        /// 2^(score − max) in place, P·V normalised by 1 / row sum into the output. Meanwhile the rows of the next pair
        /// are prefetched, a block's worth per block.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private unsafe void PairVector<TV>(int pair)
            where TV : struct, IFloatVector<TV>
        {
            long b = pair / _h, h = pair % _h;
            var q = (float*)_q + (b * _qB) + (h * _qH);
            var k = (float*)_k + (b * _kB) + (h * _kH);
            var v = (float*)_v + (b * _vB) + (h * _vH);
            var m = (float*)_m + (b * _mB) + (h * _mH);
            var o = (float*)_o + (((b * _s * _h) + h) * _d);
            var keys = _mS == 0 ? KeptKeys(m, _s) : _s;
            var next = pair + 1 < _pairs ? pair + 1 : -1;

            var (s, d, lanes) = (_s, _d, TV.Count);
            var ldk = RoundUp(keys, lanes);
            var ldv = RoundUp(d, 2 * lanes);
            var direct = d % (2 * lanes) == 0; // V rows and output rows are whole chunks of two vectors: used in place
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

            var scale = TV.Create((float)(Log2E / Math.Sqrt(d)));
            var outStride = (long)_h * d;
            var highest = default(RowVectors<TV>);
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
                    highest[r] = TV.Create(float.NegativeInfinity);
                    if (_mS != 0)
                    {
                        MaskInLog2(m + ((i0 + r) * _mS), keys, ldk, masks + (r * ldk));
                    }
                }

                var row = 0;
                if (lanes >= 16 && rows == RowBlock)
                {
                    Scores8<TV>(q + (i0 * _qS), _qS, kt, ldk, d, probs, masks, maskStride, highest, scale);
                    row = RowBlock;
                }

                for (; row + 4 <= rows; row += 4)
                {
                    Scores4<TV>(q + ((i0 + row) * _qS), _qS, kt, ldk, d, probs + (row * ldk), masks + (row * maskStride), maskStride, highest[row..], scale, 0);
                }

                for (; row < rows; row++)
                {
                    Scores1(q + ((i0 + row) * _qS), kt, ldk, d, probs + (row * ldk), masks + (row * maskStride), ref highest[row], scale);
                }

                Exponentiate<TV>(probs, ldk, rows, highest, inverse);

                var target = direct ? o + (i0 * outStride) : staging;
                var targetStride = direct ? outStride : ldv;
                var chunks = ldv / (2 * lanes);
                row = 0;
                if (lanes >= 16 && rows == RowBlock)
                {
                    Mix8<TV>(probs, ldk, values, valueStride, keys, chunks, inverse, target, targetStride);
                    row = RowBlock;
                }

                for (; row + 4 <= rows; row += 4)
                {
                    Mix4<TV>(probs + (row * ldk), ldk, values, valueStride, keys, chunks, inverse + row, target + (row * targetStride), targetStride);
                }

                for (; row < rows; row++)
                {
                    Mix1<TV>(probs + (row * ldk), values, valueStride, keys, chunks, inverse[row], target + (row * targetStride));
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
    }

    /// <summary>target[j] = mask[j]·log₂ e for j &lt; keys and −∞ in the padding up to ldk. A finite mask stays finite
    /// (float.MinValue·log₂ e would overflow), so a row masked entirely with it still has equal scores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void MaskInLog2(float* mask, int keys, int ldk, float* target)
    {
        for (var j = 0; j < keys; j++)
        {
            var value = mask[j];
            target[j] = value == float.NegativeInfinity ? value : MathF.Max(value * (float)Log2E, float.MinValue);
        }

        new Span<float>(target + keys, ldk - keys).Fill(float.NegativeInfinity);
    }

    /// <summary>kt[e, j] = k[j, e] for j &lt; keys, e &lt; d, zero for keys ≤ j &lt; ldk: 8×8 tiles through AVX registers
    /// where the CPU has AVX, the edges (and everything elsewhere) element by element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Transpose(float* k, long ks, int keys, int d, float* kt, int ldk)
    {
        var (fullKeys, fullDims) = Avx.IsSupported ? (keys / 8 * 8, d / 8 * 8) : (0, 0);
        for (var j = 0; j < fullKeys; j += 8)
        {
            for (var e = 0; e < fullDims; e += 8)
            {
                var source = k + (j * ks) + e;
                Transpose8x8.Store(Avx.LoadVector256(source), Avx.LoadVector256(source + ks), Avx.LoadVector256(source + (2 * ks)),
                    Avx.LoadVector256(source + (3 * ks)), Avx.LoadVector256(source + (4 * ks)), Avx.LoadVector256(source + (5 * ks)),
                    Avx.LoadVector256(source + (6 * ks)), Avx.LoadVector256(source + (7 * ks)), kt + ((long)e * ldk) + j, ldk);
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

    /// <summary>Scores of 8 query rows (stride <paramref name="qs"/>) against all ldk columns of Kᵀ in log₂ units,
    /// s·scale + mask, into 8 rows of <paramref name="dst"/> (stride ldk), raising each row's running maximum: 8 rows ×
    /// 2 vectors per pass, so each Kᵀ load feeds 8 multiply-adds (16 accumulators: for 32-register CPUs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Scores8<TV>(float* q, long qs, float* kt, int ldk, int d, float* dst, float* mask, long ms,
        Span<TV> highest, TV scale)
        where TV : struct, IFloatVector<TV>
    {
        var (c, lanes) = (0, TV.Count);
        for (; c + (2 * lanes) <= ldk; c += 2 * lanes)
        {
            TV a00 = default, a01 = default, a10 = default, a11 = default;
            TV a20 = default, a21 = default, a30 = default, a31 = default;
            TV a40 = default, a41 = default, a50 = default, a51 = default;
            TV a60 = default, a61 = default, a70 = default, a71 = default;
            var column = kt + c;
            var x0 = q;
            for (var e = 0; e < d; e++, column += ldk, x0++)
            {
                var k0 = TV.Load(column);
                var k1 = TV.Load(column + lanes);
                var x = TV.Create(x0[0]);
                a00 = TV.MultiplyAdd(x, k0, a00);
                a01 = TV.MultiplyAdd(x, k1, a01);
                x = TV.Create(x0[qs]);
                a10 = TV.MultiplyAdd(x, k0, a10);
                a11 = TV.MultiplyAdd(x, k1, a11);
                x = TV.Create(x0[2 * qs]);
                a20 = TV.MultiplyAdd(x, k0, a20);
                a21 = TV.MultiplyAdd(x, k1, a21);
                x = TV.Create(x0[3 * qs]);
                a30 = TV.MultiplyAdd(x, k0, a30);
                a31 = TV.MultiplyAdd(x, k1, a31);
                x = TV.Create(x0[4 * qs]);
                a40 = TV.MultiplyAdd(x, k0, a40);
                a41 = TV.MultiplyAdd(x, k1, a41);
                x = TV.Create(x0[5 * qs]);
                a50 = TV.MultiplyAdd(x, k0, a50);
                a51 = TV.MultiplyAdd(x, k1, a51);
                x = TV.Create(x0[6 * qs]);
                a60 = TV.MultiplyAdd(x, k0, a60);
                a61 = TV.MultiplyAdd(x, k1, a61);
                x = TV.Create(x0[7 * qs]);
                a70 = TV.MultiplyAdd(x, k0, a70);
                a71 = TV.MultiplyAdd(x, k1, a71);
            }

            float* target = dst + c, m = mask + c;
            Finish(target, m, scale, ref highest[0], a00, a01);
            Finish(target + ldk, m + ms, scale, ref highest[1], a10, a11);
            Finish(target + (2 * ldk), m + (2 * ms), scale, ref highest[2], a20, a21);
            Finish(target + (3 * ldk), m + (3 * ms), scale, ref highest[3], a30, a31);
            Finish(target + (4 * ldk), m + (4 * ms), scale, ref highest[4], a40, a41);
            Finish(target + (5 * ldk), m + (5 * ms), scale, ref highest[5], a50, a51);
            Finish(target + (6 * ldk), m + (6 * ms), scale, ref highest[6], a60, a61);
            Finish(target + (7 * ldk), m + (7 * ms), scale, ref highest[7], a70, a71);
        }

        if (c < ldk)
        {
            Scores4(q, qs, kt, ldk, d, dst, mask, ms, highest, scale, c);
            Scores4(q + (4 * qs), qs, kt, ldk, d, dst + (4 * ldk), mask + (4 * ms), ms, highest[4..], scale, c);
        }
    }

    /// <summary><see cref="Scores8{TV}"/> for 4 rows from column <paramref name="c"/> on: 4 rows × 2 vectors per pass
    /// (8 accumulators), then one vector at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Scores4<TV>(float* q, long qs, float* kt, int ldk, int d, float* dst, float* mask, long ms,
        Span<TV> highest, TV scale, int c)
        where TV : struct, IFloatVector<TV>
    {
        var lanes = TV.Count;
        float* q0 = q, q1 = q + qs, q2 = q + (2 * qs), q3 = q + (3 * qs);
        for (; c + (2 * lanes) <= ldk; c += 2 * lanes)
        {
            TV a00 = default, a01 = default, a10 = default, a11 = default;
            TV a20 = default, a21 = default, a30 = default, a31 = default;
            var column = kt + c;
            for (var e = 0; e < d; e++, column += ldk)
            {
                var k0 = TV.Load(column);
                var k1 = TV.Load(column + lanes);
                var x = TV.Create(q0[e]);
                a00 = TV.MultiplyAdd(x, k0, a00);
                a01 = TV.MultiplyAdd(x, k1, a01);
                x = TV.Create(q1[e]);
                a10 = TV.MultiplyAdd(x, k0, a10);
                a11 = TV.MultiplyAdd(x, k1, a11);
                x = TV.Create(q2[e]);
                a20 = TV.MultiplyAdd(x, k0, a20);
                a21 = TV.MultiplyAdd(x, k1, a21);
                x = TV.Create(q3[e]);
                a30 = TV.MultiplyAdd(x, k0, a30);
                a31 = TV.MultiplyAdd(x, k1, a31);
            }

            float* target = dst + c, m = mask + c;
            Finish(target, m, scale, ref highest[0], a00, a01);
            Finish(target + ldk, m + ms, scale, ref highest[1], a10, a11);
            Finish(target + (2 * ldk), m + (2 * ms), scale, ref highest[2], a20, a21);
            Finish(target + (3 * ldk), m + (3 * ms), scale, ref highest[3], a30, a31);
        }

        for (; c < ldk; c += lanes)
        {
            TV a0 = default, a1 = default, a2 = default, a3 = default;
            var column = kt + c;
            for (var e = 0; e < d; e++, column += ldk)
            {
                var kv = TV.Load(column);
                a0 = TV.MultiplyAdd(TV.Create(q0[e]), kv, a0);
                a1 = TV.MultiplyAdd(TV.Create(q1[e]), kv, a1);
                a2 = TV.MultiplyAdd(TV.Create(q2[e]), kv, a2);
                a3 = TV.MultiplyAdd(TV.Create(q3[e]), kv, a3);
            }

            Finish(dst + c, mask + c, scale, ref highest[0], a0);
            Finish(dst + ldk + c, mask + ms + c, scale, ref highest[1], a1);
            Finish(dst + (2 * ldk) + c, mask + (2 * ms) + c, scale, ref highest[2], a2);
            Finish(dst + (3 * ldk) + c, mask + (3 * ms) + c, scale, ref highest[3], a3);
        }
    }

    /// <summary><see cref="Scores8{TV}"/> for one row (the rows a block of 4 leaves over): 4 vectors per pass.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Scores1<TV>(float* q, float* kt, int ldk, int d, float* dst, float* mask, ref TV highest, TV scale)
        where TV : struct, IFloatVector<TV>
    {
        var (c, lanes) = (0, TV.Count);
        for (; c + (4 * lanes) <= ldk; c += 4 * lanes)
        {
            TV a0 = default, a1 = default, a2 = default, a3 = default;
            var column = kt + c;
            for (var e = 0; e < d; e++, column += ldk)
            {
                var x = TV.Create(q[e]);
                a0 = TV.MultiplyAdd(x, TV.Load(column), a0);
                a1 = TV.MultiplyAdd(x, TV.Load(column + lanes), a1);
                a2 = TV.MultiplyAdd(x, TV.Load(column + (2 * lanes)), a2);
                a3 = TV.MultiplyAdd(x, TV.Load(column + (3 * lanes)), a3);
            }

            Finish(dst + c, mask + c, scale, ref highest, a0, a1);
            Finish(dst + c + (2 * lanes), mask + c + (2 * lanes), scale, ref highest, a2, a3);
        }

        for (; c < ldk; c += lanes)
        {
            var a = TV.Zero;
            var column = kt + c;
            for (var e = 0; e < d; e++, column += ldk)
            {
                a = TV.MultiplyAdd(TV.Create(q[e]), TV.Load(column), a);
            }

            Finish(dst + c, mask + c, scale, ref highest, a);
        }
    }

    /// <summary>Stores one vector of scores acc·scale + mask and raises the row's running maximum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Finish<TV>(float* target, float* mask, TV scale, ref TV highest, TV acc)
        where TV : struct, IFloatVector<TV>
    {
        var t = TV.MultiplyAdd(acc, scale, TV.Load(mask));
        TV.Store(t, target);
        highest = TV.Max(highest, t);
    }

    /// <summary><see cref="Finish{TV}(float*, float*, TV, ref TV, TV)"/> for two vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Finish<TV>(float* target, float* mask, TV scale, ref TV highest, TV acc0, TV acc1)
        where TV : struct, IFloatVector<TV>
    {
        var t0 = TV.MultiplyAdd(acc0, scale, TV.Load(mask));
        var t1 = TV.MultiplyAdd(acc1, scale, TV.Load(mask + TV.Count));
        TV.Store(t0, target);
        TV.Store(t1, target + TV.Count);
        highest = TV.Max(highest, TV.Max(t0, t1));
    }

    /// <summary>Turns <paramref name="rows"/> rows of scores (log₂ units, −∞ in the padding) into 2^(score − row max) and
    /// sets inverse[r] = 1 / row r's sum, applied after P·V. A row with no finite score (all −∞) sums to 0 and comes out
    /// 0, as in libtorch. The rows' reductions are done side by side, so their latencies overlap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Exponentiate<TV>(float* probs, int ldk, int rows, Span<TV> highest, float* inverse)
        where TV : struct, IFloatVector<TV>
    {
        var shift = stackalloc float[RowBlock];
        for (var r = 0; r < rows; r++)
        {
            var max = TV.MaxAcross(highest[r]);
            shift[r] = max == float.NegativeInfinity ? 0 : max;
        }

        for (var r = 0; r < rows; r++)
        {
            var row = probs + (r * ldk);
            var by = TV.Create(shift[r]);
            var sum = TV.Zero;
            for (var j = 0; j < ldk; j += TV.Count)
            {
                var p = VectorMath.Exp2(TV.Load(row + j) - by);
                TV.Store(p, row + j);
                sum += p;
            }

            highest[r] = sum;
        }

        for (var r = 0; r < rows; r++)
        {
            var total = TV.Sum(highest[r]);
            inverse[r] = total == 0 ? 0 : 1 / total;
        }
    }

    /// <summary>O[r, :] = inverse[r] · Σⱼ P[r, j]·V[j, :] for 8 rows, two vectors of output columns at a time (16
    /// accumulators; each V load feeds 8 multiply-adds).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Mix8<TV>(float* probs, int ldp, float* v, long vs, int keys, int chunks, float* inverse, float* o, long os)
        where TV : struct, IFloatVector<TV>
    {
        var lanes = TV.Count;
        for (var c = 0; c < chunks; c++)
        {
            TV a00 = default, a01 = default, a10 = default, a11 = default;
            TV a20 = default, a21 = default, a30 = default, a31 = default;
            TV a40 = default, a41 = default, a50 = default, a51 = default;
            TV a60 = default, a61 = default, a70 = default, a71 = default;
            var row = v + (c * 2 * lanes);
            var p = probs;
            for (var j = 0; j < keys; j++, row += vs, p++)
            {
                var v0 = TV.Load(row);
                var v1 = TV.Load(row + lanes);
                var x = TV.Create(p[0]);
                a00 = TV.MultiplyAdd(x, v0, a00);
                a01 = TV.MultiplyAdd(x, v1, a01);
                x = TV.Create(p[ldp]);
                a10 = TV.MultiplyAdd(x, v0, a10);
                a11 = TV.MultiplyAdd(x, v1, a11);
                x = TV.Create(p[2 * ldp]);
                a20 = TV.MultiplyAdd(x, v0, a20);
                a21 = TV.MultiplyAdd(x, v1, a21);
                x = TV.Create(p[3 * ldp]);
                a30 = TV.MultiplyAdd(x, v0, a30);
                a31 = TV.MultiplyAdd(x, v1, a31);
                x = TV.Create(p[4 * ldp]);
                a40 = TV.MultiplyAdd(x, v0, a40);
                a41 = TV.MultiplyAdd(x, v1, a41);
                x = TV.Create(p[5 * ldp]);
                a50 = TV.MultiplyAdd(x, v0, a50);
                a51 = TV.MultiplyAdd(x, v1, a51);
                x = TV.Create(p[6 * ldp]);
                a60 = TV.MultiplyAdd(x, v0, a60);
                a61 = TV.MultiplyAdd(x, v1, a61);
                x = TV.Create(p[7 * ldp]);
                a70 = TV.MultiplyAdd(x, v0, a70);
                a71 = TV.MultiplyAdd(x, v1, a71);
            }

            var target = o + (c * 2 * lanes);
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

    /// <summary><see cref="Mix8{TV}"/> for 4 rows (8 accumulators: for 16-register CPUs, and what a block of 8 leaves).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Mix4<TV>(float* probs, int ldp, float* v, long vs, int keys, int chunks, float* inverse, float* o, long os)
        where TV : struct, IFloatVector<TV>
    {
        var lanes = TV.Count;
        for (var c = 0; c < chunks; c++)
        {
            TV a00 = default, a01 = default, a10 = default, a11 = default;
            TV a20 = default, a21 = default, a30 = default, a31 = default;
            var row = v + (c * 2 * lanes);
            var p = probs;
            for (var j = 0; j < keys; j++, row += vs, p++)
            {
                var v0 = TV.Load(row);
                var v1 = TV.Load(row + lanes);
                var x = TV.Create(p[0]);
                a00 = TV.MultiplyAdd(x, v0, a00);
                a01 = TV.MultiplyAdd(x, v1, a01);
                x = TV.Create(p[ldp]);
                a10 = TV.MultiplyAdd(x, v0, a10);
                a11 = TV.MultiplyAdd(x, v1, a11);
                x = TV.Create(p[2 * ldp]);
                a20 = TV.MultiplyAdd(x, v0, a20);
                a21 = TV.MultiplyAdd(x, v1, a21);
                x = TV.Create(p[3 * ldp]);
                a30 = TV.MultiplyAdd(x, v0, a30);
                a31 = TV.MultiplyAdd(x, v1, a31);
            }

            var target = o + (c * 2 * lanes);
            Store2(target, inverse[0], a00, a01);
            Store2(target + os, inverse[1], a10, a11);
            Store2(target + (2 * os), inverse[2], a20, a21);
            Store2(target + (3 * os), inverse[3], a30, a31);
        }
    }

    /// <summary>One output row of P·V (the rows a block of 4 leaves over).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Mix1<TV>(float* probs, float* v, long vs, int keys, int chunks, float inverse, float* o)
        where TV : struct, IFloatVector<TV>
    {
        var lanes = TV.Count;
        for (var c = 0; c < chunks; c++)
        {
            TV a0 = default, a1 = default, b0 = default, b1 = default;
            var row = v + (c * 2 * lanes);
            var j = 0;

            // Two keys per step: two independent accumulator pairs hide the multiply-add latency.
            for (; j + 2 <= keys; j += 2, row += 2 * vs)
            {
                var x = TV.Create(probs[j]);
                var y = TV.Create(probs[j + 1]);
                a0 = TV.MultiplyAdd(x, TV.Load(row), a0);
                a1 = TV.MultiplyAdd(x, TV.Load(row + lanes), a1);
                b0 = TV.MultiplyAdd(y, TV.Load(row + vs), b0);
                b1 = TV.MultiplyAdd(y, TV.Load(row + vs + lanes), b1);
            }

            if (j < keys)
            {
                var x = TV.Create(probs[j]);
                a0 = TV.MultiplyAdd(x, TV.Load(row), a0);
                a1 = TV.MultiplyAdd(x, TV.Load(row + lanes), a1);
            }

            Store2(o + (c * 2 * lanes), inverse, a0 + b0, a1 + b1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store2<TV>(float* target, float scale, TV a, TV b)
        where TV : struct, IFloatVector<TV>
    {
        var factor = TV.Create(scale);
        TV.Store(a * factor, target);
        TV.Store(b * factor, target + TV.Count);
    }
}
