using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>The fp32 GEMM for CPUs where libtorch's sgemm (MKL) leaves vector width unused: MKL takes its AVX-512
/// kernels only on Intel CPUs, so on an AMD Zen 4/5 it runs its AVX2 code at half the FMA width (measured on a Zen 5:
/// MiniLM's fp32 forward at 0.5× ONNX Runtime, whose MLAS has AVX-512 kernels for every vendor).
/// C[M, N] = A[M, K] · W[N, K]ᵀ + bias, then GELU if asked, written once per width over <see cref="IFloatVector{TSelf}"/>.
/// <para>Blocking (GotoBLAS-style, as <see cref="PackedInt8Gemm"/>): W is packed once per call into panels of 2·lanes
/// columns, K rows each (the weights keep their [N, K] layout everywhere else, so nothing can go stale; the pack is one
/// pass over W, ~1/M of the GEMM). A work unit is a block of <see cref="BlockRows"/> rows of A times a slice of the
/// panels; within it K is walked in <see cref="DepthBlock"/> slices so a panel slice (KC × 2·lanes floats) stays in L1
/// while the 6-row register kernel sweeps the block's rows, which stay in L2. The bias seeds the accumulators and
/// GELU runs on the unit's rows while they are in cache.</para></summary>
internal static unsafe class PackedFloatGemm
{
    /// <summary>Rows of the register kernel: 6 × 2 accumulators + 2 panel vectors + a broadcast fit 16 registers.</summary>
    public const int Rows = 6;

    /// <summary>Rows of A per work unit (48 × KC floats: 48 KB at KC = 256, in L2 beside the panels).</summary>
    public const int BlockRows = 8 * Rows;

    /// <summary>K per slice: a panel slice of 256 × 32 floats is 32 KB (AVX-512), 16 KB (AVX2): within L1.</summary>
    public const int DepthBlock = 256;

    /// <summary>Up to this many rows of A, units pack their own panels (<see cref="SmallJob"/>); above it W is packed
    /// once for all units.</summary>
    public const int SmallRows = 4 * BlockRows;

    [ThreadStatic]
    private static float[]? _packed, _edge, _panel;

    /// <summary>Whether an [M, K]·[N, K]ᵀ product fits the kernel's int indexing and buffers.</summary>
    public static bool Fits(long m, long n, long k) => m <= int.MaxValue / 2 && n <= int.MaxValue / 2 && (n + 64) * (k + 1) <= int.MaxValue / 2;

    /// <summary>C = A·Wᵀ (+ bias) (then GELU), A [M, K] rows <paramref name="lda"/> floats apart, W [N, K] rows
    /// <paramref name="ldw"/> apart, C [M, N] contiguous; on this thread's torch thread team at <paramref name="bits"/>.</summary>
    public static void Run(int bits, float* a, long lda, float* w, long ldw, float* bias, float* c, int m, int n, int k, bool gelu)
    {
        var kernel = new GemmKernel(a, lda, w, ldw, bias, c, m, n, k, gelu);
        VectorWidth.Run(ref kernel, bits);
    }

    /// <summary>Frees this thread's buffers (they are otherwise kept for the next call).</summary>
    public static void Release() => (_packed, _edge, _panel) = (null, null, null);

    private readonly struct GemmKernel(float* a, long lda, float* w, long ldw, float* bias, float* c, int m, int n, int k, bool gelu) : IVectorKernel
    {
        public void Run<TV>()
            where TV : struct, IFloatVector<TV> => Gemm<TV>(a, lda, w, ldw, bias, c, m, n, k, gelu);
    }

    private static void Gemm<TV>(float* a, long lda, float* w, long ldw, float* bias, float* c, int m, int n, int k, bool gelu)
        where TV : struct, IFloatVector<TV>
    {
        if (m == 0 || n == 0)
        {
            return;
        }

        var width = 2 * TV.Count;
        var panels = (n + width - 1) / width;
        var panelFloats = (long)k * width;
        var threads = Math.Max(1, get_num_threads());
        if (m <= SmallRows)
        {
            // Few rows (serving batches): each unit packs its own panels just before it uses them, while they are hot,
            // and runs all M rows against each; A's rows stay in L2 for the whole call.
            var units = Math.Min(panels, 4 * threads);
            var perUnit = (panels + units - 1) / units;
            var small = new SmallJob((nint)a, lda, (nint)w, ldw, (nint)bias, (nint)c, m, n, k, width, perUnit, gelu);
            CpuParallel.ForEach((panels + perUnit - 1) / perUnit, small.Unit<TV>);
            return;
        }

        var packed = (nint)PinnedBuffers.Aligned(ref _packed, panels * panelFloats);
        var source = (nint)w;
        CpuParallel.For(panels, 1, (first, end) =>
        {
            for (var panel = first; panel < end; panel++)
            {
                PackPanel((float*)source, ldw, k, n, (int)panel * width, width, (float*)packed + (panel * panelFloats));
            }
        }, k * width);

        // Units: row blocks, each split into slices of panels when there are too few blocks to keep the team busy.
        var rowBlocks = (m + BlockRows - 1) / BlockRows;
        var slices = rowBlocks >= 2 * threads ? 1 : Math.Min(panels, ((2 * threads) + rowBlocks - 1) / rowBlocks);
        var panelsPerSlice = (panels + slices - 1) / slices;
        var job = new Job((nint)a, lda, (nint)bias, (nint)c, m, n, k, width, panelFloats, panelsPerSlice, slices, packed, gelu);
        CpuParallel.ForEach(rowBlocks * slices, job.Unit<TV>);
    }

    /// <summary>One call's shared description; each unit owns its rows × columns of C.</summary>
    private sealed class Job(nint a, long lda, nint bias, nint c, int m, int n, int k, int width, long panelFloats, int panelsPerSlice, int slices, nint packed, bool gelu)
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Unit<TV>(int unit)
            where TV : struct, IFloatVector<TV>
        {
            var (block, slice) = (unit / slices, unit % slices);
            var firstPanel = slice * panelsPerSlice;
            var endPanel = Math.Min((n + width - 1) / width, firstPanel + panelsPerSlice);
            if (firstPanel >= endPanel)
            {
                return;
            }

            var row0 = block * BlockRows;
            var rows = Math.Min(BlockRows, m - row0);
            var whole = rows / Rows * Rows;
            var column0 = firstPanel * width;
            var columns = Math.Min(n, endPanel * width) - column0;

            // The last rows of A (fewer than the register kernel's six) and the last columns of C (past N) go through
            // a zero-padded copy, so the kernel never reads or writes outside the tensors.
            var tailRows = rows - whole;
            // Scratch: the tail rows of A (6 × K), EdgeTile's 6 × width block and its padded bias row.
            var edge = (float*)PinnedBuffers.Aligned(ref _edge, ((long)Rows * k) + ((Rows + 1) * width));
            var tailA = edge;
            var tailC = edge + ((long)Rows * k);
            if (tailRows > 0)
            {
                new Span<float>(tailA, Rows * k).Clear();
                for (var r = 0; r < tailRows; r++)
                {
                    new ReadOnlySpan<float>((float*)a + ((row0 + whole + r) * lda), k).CopyTo(new Span<float>(tailA + ((long)r * k), k));
                }
            }

            var cBase = (float*)c;
            for (var k0 = 0; k0 < k; k0 += DepthBlock)
            {
                var depth = Math.Min(DepthBlock, k - k0);
                var first = k0 == 0;
                for (var panel = firstPanel; panel < endPanel; panel++)
                {
                    var weights = (float*)packed + (panel * panelFloats) + ((long)k0 * width);
                    var col = panel * width;
                    var fullPanel = col + width <= n;
                    var seed = (float*)bias == null ? null : (float*)bias + col;
                    for (var r = 0; r < whole; r += Rows)
                    {
                        var aRow = (float*)a + ((row0 + r) * lda) + k0;
                        if (fullPanel)
                        {
                            Tile<TV>(aRow, lda, weights, depth, cBase + ((long)(row0 + r) * n) + col, n, first, seed);
                        }
                        else
                        {
                            EdgeTile<TV>(aRow, lda, weights, depth, cBase + ((long)(row0 + r) * n) + col, n, Rows, n - col, first, seed, tailC, width);
                        }
                    }

                    if (tailRows > 0)
                    {
                        EdgeTile<TV>(tailA + k0, k, weights, depth, cBase + ((long)(row0 + whole) * n) + col, n, tailRows, Math.Min(width, n - col), first, seed, tailC, width);
                    }
                }
            }

            if (gelu)
            {
                for (var r = 0; r < rows; r++)
                {
                    GeluRow<TV>(cBase + ((long)(row0 + r) * n) + column0, columns);
                }
            }
        }
    }

    /// <summary>The few-rows path: a unit owns a run of panels (all rows of C in their columns), packs each into a
    /// per-thread buffer and sweeps every row over it, K slice by K slice.</summary>
    private sealed class SmallJob(nint a, long lda, nint w, long ldw, nint bias, nint c, int m, int n, int k, int width, int perUnit, bool gelu)
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Unit<TV>(int unit)
            where TV : struct, IFloatVector<TV>
        {
            var firstPanel = unit * perUnit;
            var endPanel = Math.Min((n + width - 1) / width, firstPanel + perUnit);
            var whole = m / Rows * Rows;
            var tailRows = m - whole;
            var panel = PinnedBuffers.Aligned(ref _panel, (long)k * width);
            var edge = PinnedBuffers.Aligned(ref _edge, ((long)Rows * k) + ((Rows + 1) * width));
            var tailA = edge;
            var tailC = edge + ((long)Rows * k);
            if (tailRows > 0)
            {
                new Span<float>(tailA, Rows * k).Clear();
                for (var r = 0; r < tailRows; r++)
                {
                    new ReadOnlySpan<float>((float*)a + ((whole + r) * lda), k).CopyTo(new Span<float>(tailA + ((long)r * k), k));
                }
            }

            var cBase = (float*)c;
            for (var p = firstPanel; p < endPanel; p++)
            {
                var col = p * width;
                PackPanel((float*)w, ldw, k, n, col, width, panel);
                var fullPanel = col + width <= n;
                var seed = (float*)bias == null ? null : (float*)bias + col;
                for (var k0 = 0; k0 < k; k0 += DepthBlock)
                {
                    var depth = Math.Min(DepthBlock, k - k0);
                    var first = k0 == 0;
                    var weights = panel + ((long)k0 * width);
                    for (var r = 0; r < whole; r += Rows)
                    {
                        var aRow = (float*)a + (r * lda) + k0;
                        if (fullPanel)
                        {
                            Tile<TV>(aRow, lda, weights, depth, cBase + ((long)r * n) + col, n, first, seed);
                        }
                        else
                        {
                            EdgeTile<TV>(aRow, lda, weights, depth, cBase + ((long)r * n) + col, n, Rows, n - col, first, seed, tailC, width);
                        }
                    }

                    if (tailRows > 0)
                    {
                        EdgeTile<TV>(tailA + k0, k, weights, depth, cBase + ((long)whole * n) + col, n, tailRows, Math.Min(width, n - col), first, seed, tailC, width);
                    }
                }

                if (gelu)
                {
                    var columns = Math.Min(width, n - col);
                    for (var r = 0; r < m; r++)
                    {
                        GeluRow<TV>(cBase + ((long)r * n) + col, columns);
                    }
                }
            }
        }
    }

    /// <summary>A tile at the edges: run the kernel into a zero-padded 6 × width scratch block, then copy the
    /// <paramref name="rows"/> × <paramref name="columns"/> that exist.</summary>
    private static void EdgeTile<TV>(float* a, long lda, float* panel, int depth, float* c, long ldc, int rows, int columns, bool first, float* bias, float* scratch, int width)
        where TV : struct, IFloatVector<TV>
    {
        for (var r = 0; r < Rows; r++)
        {
            var line = new Span<float>(scratch + (r * width), width);
            line.Clear();
            if (!first && r < rows)
            {
                new ReadOnlySpan<float>(c + (r * ldc), columns).CopyTo(line);
            }
        }

        float* seed = null;
        if (first && bias != null)
        {
            seed = scratch + (Rows * width);
            new Span<float>(seed, width).Clear();
            new ReadOnlySpan<float>(bias, columns).CopyTo(new Span<float>(seed, width));
        }

        // Rows of A past `rows` are read from the tail copy's zero rows or from real rows whose results are dropped.
        Tile<TV>(a, lda, panel, depth, scratch, width, first, seed);
        for (var r = 0; r < rows; r++)
        {
            new ReadOnlySpan<float>(scratch + (r * width), columns).CopyTo(new Span<float>(c + (r * ldc), columns));
        }
    }

    /// <summary>The register kernel: C[6, 2·lanes] (=|+=) A[6, depth]·panel, each of A's values broadcast against the
    /// panel's two vectors: twelve FMAs per two loads, every accumulator in a register for the whole slice. The first
    /// slice starts from the bias (or zero), later ones from C.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TV>(float* a, long lda, float* panel, int depth, float* c, long ldc, bool first, float* bias)
        where TV : struct, IFloatVector<TV>
    {
        var lanes = TV.Count;
        TV c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (first)
        {
            var (s0, s1) = bias == null ? (TV.Zero, TV.Zero) : (TV.Load(bias), TV.Load(bias + lanes));
            (c00, c01, c10, c11, c20, c21) = (s0, s1, s0, s1, s0, s1);
            (c30, c31, c40, c41, c50, c51) = (s0, s1, s0, s1, s0, s1);
        }
        else
        {
            (c00, c01) = (TV.Load(c), TV.Load(c + lanes));
            (c10, c11) = (TV.Load(c + ldc), TV.Load(c + ldc + lanes));
            (c20, c21) = (TV.Load(c + (2 * ldc)), TV.Load(c + (2 * ldc) + lanes));
            (c30, c31) = (TV.Load(c + (3 * ldc)), TV.Load(c + (3 * ldc) + lanes));
            (c40, c41) = (TV.Load(c + (4 * ldc)), TV.Load(c + (4 * ldc) + lanes));
            (c50, c51) = (TV.Load(c + (5 * ldc)), TV.Load(c + (5 * ldc) + lanes));
        }

        float* a0 = a, a1 = a + lda, a2 = a + (2 * lda), a3 = a + (3 * lda), a4 = a + (4 * lda), a5 = a + (5 * lda);
        for (var p = 0; p < depth; p++, panel += 2 * lanes)
        {
            var b0 = TV.Load(panel);
            var b1 = TV.Load(panel + lanes);
            var x = TV.Create(a0[p]);
            c00 = TV.MultiplyAdd(x, b0, c00);
            c01 = TV.MultiplyAdd(x, b1, c01);
            x = TV.Create(a1[p]);
            c10 = TV.MultiplyAdd(x, b0, c10);
            c11 = TV.MultiplyAdd(x, b1, c11);
            x = TV.Create(a2[p]);
            c20 = TV.MultiplyAdd(x, b0, c20);
            c21 = TV.MultiplyAdd(x, b1, c21);
            x = TV.Create(a3[p]);
            c30 = TV.MultiplyAdd(x, b0, c30);
            c31 = TV.MultiplyAdd(x, b1, c31);
            x = TV.Create(a4[p]);
            c40 = TV.MultiplyAdd(x, b0, c40);
            c41 = TV.MultiplyAdd(x, b1, c41);
            x = TV.Create(a5[p]);
            c50 = TV.MultiplyAdd(x, b0, c50);
            c51 = TV.MultiplyAdd(x, b1, c51);
        }

        TV.Store(c00, c);
        TV.Store(c01, c + lanes);
        TV.Store(c10, c + ldc);
        TV.Store(c11, c + ldc + lanes);
        TV.Store(c20, c + (2 * ldc));
        TV.Store(c21, c + (2 * ldc) + lanes);
        TV.Store(c30, c + (3 * ldc));
        TV.Store(c31, c + (3 * ldc) + lanes);
        TV.Store(c40, c + (4 * ldc));
        TV.Store(c41, c + (4 * ldc) + lanes);
        TV.Store(c50, c + (5 * ldc));
        TV.Store(c51, c + (5 * ldc) + lanes);
    }

    private static void GeluRow<TV>(float* y, int count)
        where TV : struct, IFloatVector<TV>
    {
        var i = 0;
        for (; i + TV.Count <= count; i += TV.Count)
        {
            TV.Store(VectorMath.Gelu(TV.Load(y + i)), y + i);
        }

        for (; i < count; i++)
        {
            y[i] = VectorMath.Gelu(y[i]);
        }
    }

    /// <summary>Panel of columns [n0, n0 + width) of W as target[p·width + j] = W[n0 + j, p], zero past N. With AVX
    /// eight columns × eight k at a time through an 8 × 8 transpose in registers; the edges element by element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackPanel(float* w, long ldw, int k, int n, int n0, int width, float* target)
    {
        var whole = Avx.IsSupported ? k / 8 * 8 : 0;
        for (var j0 = 0; j0 < width; j0 += 8)
        {
            var full = n0 + j0 + 8 <= n ? whole : 0;
            if (full > 0)
            {
                var rows = w + ((n0 + j0) * ldw);
                for (var kk = 0; kk < full; kk += 8)
                {
                    var s = rows + kk;
                    Transpose8x8.Store(Avx.LoadVector256(s), Avx.LoadVector256(s + ldw), Avx.LoadVector256(s + (2 * ldw)), Avx.LoadVector256(s + (3 * ldw)),
                        Avx.LoadVector256(s + (4 * ldw)), Avx.LoadVector256(s + (5 * ldw)), Avx.LoadVector256(s + (6 * ldw)), Avx.LoadVector256(s + (7 * ldw)),
                        target + ((long)kk * width) + j0, width);
                }
            }

            for (var j = j0; j < j0 + 8; j++)
            {
                var column = n0 + j;
                var row = w + (column * ldw);
                for (var p = column < n ? full : 0; p < k; p++)
                {
                    target[((long)p * width) + j] = column < n ? row[p] : 0f;
                }
            }
        }
    }
}
