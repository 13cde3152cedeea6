using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>The int8 GEMM for CPUs where libtorch's <c>_int_mm</c> has no fast kernel (no AVX512-VNNI: there it is a
/// scalar triple loop, ~50× slower than fp32): C[M, N] = A[M, K] · W[N, K]ᵀ, int8 operands, exact int32 sums.
/// Operands are widened to int16 pairs so one instruction (<see cref="IInt16Dot{TShort, TInt}"/>: pmaddwd, vpmaddwd,
/// vpdpwssd) multiplies and pair-sums them without the saturation of vpmaddubsw.
/// <para>Blocking (GotoBLAS-style, sized for L1/L2): W is packed once per call into panels of 2·lanes columns, each an
/// array of K/2 rows of (column, pair) int16 — the weights stay in their [N, K] checkpoint layout everywhere else, so
/// nothing can go stale; repacking costs one pass over W, ~1/M of the GEMM. Work units are blocks of
/// <see cref="BlockRows"/> rows (times a slice of the panels when M is small): a unit widens or quantizes its rows of A
/// to int16 (an f32 A is quantized here, so the int8 activation never reaches memory), runs the 6 × 2·lanes register
/// kernel over every panel into an L2-resident int32 block, then applies the epilogue (dequantize + bias + GELU, or
/// requantize, or a plain int32 store) to that block while it is still in cache.</para></summary>
internal static unsafe class PackedInt8Gemm
{
    /// <summary>Rows of the register kernel: 6 × 2 accumulators + 2 panel vectors + a broadcast fit 16 registers.</summary>
    public const int Rows = 6;

    /// <summary>Rows per work unit: A's int16 rows (24 × 2K bytes) and the int32 block (24 × 4N bytes) stay in L2.</summary>
    public const int BlockRows = 4 * Rows;

    /// <summary>The per-thread buffers: packed W on the calling thread, A rows and the int32 block on each worker.</summary>
    [ThreadStatic]
    private static short[]? _packed, _rows;

    [ThreadStatic]
    private static int[]? _block;

    /// <summary>The register kernels, one per instruction set.</summary>
    public enum Variant
    {
        Sse2,
        Avx2,
        AvxVnni,
        Avx512,
    }

    /// <summary>The kernel for vectors of <paramref name="bits"/> on this CPU (AVX-VNNI where present at 256 bits), or
    /// null where none runs (no SSE2: not x86).</summary>
    public static Variant? For(int bits) => bits switch
    {
        512 when Avx512Dot.IsSupported => Variant.Avx512,
        512 or 256 when AvxVnniDot.IsSupported => Variant.AvxVnni,
        512 or 256 when Avx2Dot.IsSupported => Variant.Avx2,
        > 0 when Sse2Dot.IsSupported => Variant.Sse2,
        _ => null,
    };

    /// <summary>Whether <paramref name="variant"/> runs on this CPU.</summary>
    public static bool IsSupported(Variant variant) => variant switch
    {
        Variant.Sse2 => Sse2Dot.IsSupported,
        Variant.Avx2 => Avx2Dot.IsSupported,
        Variant.AvxVnni => AvxVnniDot.IsSupported,
        Variant.Avx512 => Avx512Dot.IsSupported,
        _ => false,
    };

    /// <summary>Whether an [M, K]·[N, K]ᵀ product fits the kernel's int indexing and buffers.</summary>
    public static bool Fits(long m, long n, long k) => m <= int.MaxValue && (n + 64) * (k + 2) <= int.MaxValue / 4 && BlockRows * (n + 64) <= int.MaxValue / 4;

    /// <summary>The A operand: int8 rows, or f32 rows quantized here as clamp(round(x / scale), ±127).</summary>
    public readonly record struct Operand(nint Data, long RowStride, bool IsFloat, float Scale);

    /// <summary>Where C goes: through <paramref name="Epilogue"/> when given, else as int32 into Int32 (row-major, N wide).</summary>
    public readonly record struct Output(QuantizedCpuLoops.Epilogue? Epilogue, nint Int32);

    /// <summary>C = A·Wᵀ for A [M, K] (<paramref name="a"/>), W [N, K] int8 rows <paramref name="weightStride"/> apart,
    /// on this thread's torch thread team. <paramref name="bits"/> is the float width of the epilogue and A's quantizer.</summary>
    public static void Run(Variant variant, int bits, Operand a, sbyte* weight, long weightStride, int m, int n, int k, Output output)
    {
        if (m == 0 || n == 0)
        {
            return;
        }

        switch (variant)
        {
            case Variant.Sse2:
                Run<Sse2Dot, Vector128<short>, Vector128<int>>(bits, a, weight, weightStride, m, n, k, output);
                break;
            case Variant.Avx2:
                Run<Avx2Dot, Vector256<short>, Vector256<int>>(bits, a, weight, weightStride, m, n, k, output);
                break;
            case Variant.AvxVnni:
                Run<AvxVnniDot, Vector256<short>, Vector256<int>>(bits, a, weight, weightStride, m, n, k, output);
                break;
            case Variant.Avx512:
                Run<Avx512Dot, Vector512<short>, Vector512<int>>(bits, a, weight, weightStride, m, n, k, output);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(variant), variant, "unknown int8 GEMM kernel");
        }
    }

    /// <summary>Frees this thread's buffers (they are otherwise kept for the next call).</summary>
    public static void Release() => (_packed, _rows, _block) = (null, null, null);

    private static void Run<TDot, TS, TI>(int bits, Operand a, sbyte* weight, long weightStride, int m, int n, int k, Output output)
        where TDot : struct, IInt16Dot<TS, TI>
        where TS : struct
        where TI : struct
    {
        if (!TDot.IsSupported)
        {
            throw new PlatformNotSupportedException($"PackedInt8Gemm: the {typeof(TDot).Name} kernel needs an instruction set this CPU lacks");
        }

        var pairs = (k + 1) / 2;
        var width = 2 * TDot.Lanes;
        var panels = (n + width - 1) / width;
        var panelShorts = (long)pairs * width * 2;
        var packed = (nint)PinnedBuffers.Aligned(ref _packed, panels * panelShorts);
        var source = (nint)weight;
        CpuParallel.For(panels, 1, (first, end) =>
        {
            for (var panel = first; panel < end; panel++)
            {
                PackPanel((sbyte*)source, weightStride, k, n, (int)panel * width, width, (int*)((short*)packed + (panel * panelShorts)), pairs);
            }
        }, pairs * width);

        // Units: row blocks, each split into slices of panels when there are too few blocks to keep the team busy.
        var threads = Math.Max(1, get_num_threads());
        var rowBlocks = (m + BlockRows - 1) / BlockRows;
        var slices = rowBlocks >= 2 * threads ? 1 : Math.Min(panels, ((2 * threads) + rowBlocks - 1) / rowBlocks);
        var panelsPerSlice = (panels + slices - 1) / slices;
        var job = new Job(a, m, n, k, pairs, width, panelShorts, panelsPerSlice, slices, (short*)packed, output, bits);
        CpuParallel.ForEach(rowBlocks * slices, job.Unit<TDot, TS, TI>);
    }

    /// <summary>The shared description of one call; each unit reads it and owns its own rows of the output.</summary>
    private sealed class Job(Operand a, int m, int n, int k, int pairs, int width, long panelShorts, int panelsPerSlice, int slices, short* packed, Output output, int bits)
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Unit<TDot, TS, TI>(int unit)
            where TDot : struct, IInt16Dot<TS, TI>
            where TS : struct
            where TI : struct
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
            var paddedRows = (rows + Rows - 1) / Rows * Rows;
            var lda = 2 * pairs;
            var ldc = (endPanel - firstPanel) * width;
            var operand = PinnedBuffers.Aligned(ref _rows, (long)paddedRows * lda);
            var sums = (int*)PinnedBuffers.Aligned(ref _block, (long)paddedRows * ldc);
            LoadRows(a, row0, rows, paddedRows, k, operand, lda, bits);

            for (var panel = firstPanel; panel < endPanel; panel++)
            {
                var weights = packed + (panel * panelShorts);
                var target = sums + ((panel - firstPanel) * width);
                for (var r = 0; r < paddedRows; r += Rows)
                {
                    Tile<TDot, TS, TI>(operand + (r * lda), lda, weights, pairs, target + (r * ldc), ldc);
                }
            }

            var column = firstPanel * width;
            var columns = Math.Min(n, endPanel * width) - column;
            for (var r = 0; r < rows; r++)
            {
                if (output.Epilogue is { } epilogue)
                {
                    epilogue.Row(sums + (r * ldc), row0 + r, column, columns, bits);
                }
                else
                {
                    new ReadOnlySpan<int>(sums + (r * ldc), columns).CopyTo(new Span<int>((int*)output.Int32 + ((long)(row0 + r) * n) + column, columns));
                }
            }
        }
    }

    /// <summary>Rows [row0, row0 + rows) of A as int16, K padded to even with a zero, then zero rows up to paddedRows.</summary>
    private static void LoadRows(Operand a, int row0, int rows, int paddedRows, int k, short* target, int lda, int bits)
    {
        for (var r = 0; r < rows; r++)
        {
            var row = target + (r * lda);
            if (a.IsFloat)
            {
                var kernel = new QuantizeRowKernel((float*)a.Data + ((row0 + r) * a.RowStride), row, k, a.Scale);
                VectorWidth.Run(ref kernel, bits);
            }
            else
            {
                Widen((sbyte*)a.Data + ((row0 + r) * a.RowStride), row, k);
            }

            if (lda > k)
            {
                row[k] = 0;
            }
        }

        new Span<short>(target + (rows * lda), (paddedRows - rows) * lda).Clear();
    }

    private readonly struct QuantizeRowKernel(float* x, short* q, int count, float scale) : IVectorKernel
    {
        public void Run<TV>()
            where TV : struct, IFloatVector<TV> => QuantizedCpuLoops.QuantizeRange<TV, short>(x, q, count, scale);
    }

    /// <summary>int8 → int16, 16 at a time (pmovsxbw on x86).</summary>
    private static void Widen(sbyte* source, short* target, int count)
    {
        var i = 0;
        for (; i + 16 <= count; i += 16)
        {
            var bytes = Vector128.Load(source + i);
            Vector128.WidenLower(bytes).Store(target + i);
            Vector128.WidenUpper(bytes).Store(target + i + 8);
        }

        for (; i < count; i++)
        {
            target[i] = source[i];
        }
    }

    /// <summary>The register kernel: C[6, 2·lanes] = A[6, K]·panel, six rows of int16 pairs against one packed panel.
    /// Each pair of panel vectors feeds twelve multiply-adds; every accumulator stays in a register for the whole of K.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TDot, TS, TI>(short* a, int lda, short* panel, int pairs, int* c, int ldc)
        where TDot : struct, IInt16Dot<TS, TI>
        where TS : struct
        where TI : struct
    {
        TI c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        TI c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        int* a0 = (int*)a, a1 = (int*)(a + lda), a2 = (int*)(a + (2 * lda)), a3 = (int*)(a + (3 * lda)), a4 = (int*)(a + (4 * lda)), a5 = (int*)(a + (5 * lda));
        var half = 2 * TDot.Lanes; // shorts per vector
        for (var p = 0; p < pairs; p++, panel += 2 * half)
        {
            var b0 = TDot.Load(panel);
            var b1 = TDot.Load(panel + half);
            var x = TDot.BroadcastPair(a0 + p);
            c00 = TDot.DotAdd(c00, x, b0);
            c01 = TDot.DotAdd(c01, x, b1);
            x = TDot.BroadcastPair(a1 + p);
            c10 = TDot.DotAdd(c10, x, b0);
            c11 = TDot.DotAdd(c11, x, b1);
            x = TDot.BroadcastPair(a2 + p);
            c20 = TDot.DotAdd(c20, x, b0);
            c21 = TDot.DotAdd(c21, x, b1);
            x = TDot.BroadcastPair(a3 + p);
            c30 = TDot.DotAdd(c30, x, b0);
            c31 = TDot.DotAdd(c31, x, b1);
            x = TDot.BroadcastPair(a4 + p);
            c40 = TDot.DotAdd(c40, x, b0);
            c41 = TDot.DotAdd(c41, x, b1);
            x = TDot.BroadcastPair(a5 + p);
            c50 = TDot.DotAdd(c50, x, b0);
            c51 = TDot.DotAdd(c51, x, b1);
        }

        var lanes = TDot.Lanes;
        TDot.Store(c00, c);
        TDot.Store(c01, c + lanes);
        TDot.Store(c10, c + ldc);
        TDot.Store(c11, c + ldc + lanes);
        TDot.Store(c20, c + (2 * ldc));
        TDot.Store(c21, c + (2 * ldc) + lanes);
        TDot.Store(c30, c + (3 * ldc));
        TDot.Store(c31, c + (3 * ldc) + lanes);
        TDot.Store(c40, c + (4 * ldc));
        TDot.Store(c41, c + (4 * ldc) + lanes);
        TDot.Store(c50, c + (5 * ldc));
        TDot.Store(c51, c + (5 * ldc) + lanes);
    }

    /// <summary>Panel of columns [n0, n0 + width) of W as target[p·width + j] = (W[n0 + j, 2p], W[n0 + j, 2p + 1]) in
    /// int16 (an int32 each), zero past N and K. With AVX2 eight columns × sixteen k at a time: widen, then an 8 × 8
    /// int32 transpose in registers; the edges element by element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackPanel(sbyte* w, long ldw, int k, int n, int n0, int width, int* target, int pairs)
    {
        var whole = Avx2.IsSupported ? k / 16 * 16 : 0;
        for (var j0 = 0; j0 < width; j0 += 8)
        {
            var full = n0 + j0 + 8 <= n ? whole : 0;
            if (full > 0)
            {
                var rows = w + ((n0 + j0) * ldw);
                for (var kk = 0; kk < full; kk += 16)
                {
                    Transpose8(rows + kk, ldw, target + ((kk / 2) * width) + j0, width);
                }
            }

            for (var j = j0; j < j0 + 8; j++)
            {
                var column = n0 + j;
                var row = w + (column * ldw);
                for (var p = (column < n ? full : 0) / 2; p < pairs; p++)
                {
                    var (even, odd) = column >= n ? (0, 0) : (row[2 * p], 2 * p + 1 < k ? row[(2 * p) + 1] : 0);
                    target[(p * width) + j] = (ushort)(short)even | ((short)odd << 16);
                }
            }
        }
    }

    /// <summary>Eight rows of 16 int8 (row stride <paramref name="ldw"/>), each widened to eight int16 pairs, stored
    /// transposed as eight pair rows of eight columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8(sbyte* source, long ldw, int* target, int width)
    {
        Transpose8x8.Store(Pairs(source), Pairs(source + ldw), Pairs(source + (2 * ldw)), Pairs(source + (3 * ldw)),
            Pairs(source + (4 * ldw)), Pairs(source + (5 * ldw)), Pairs(source + (6 * ldw)), Pairs(source + (7 * ldw)), (float*)target, width);
    }

    /// <summary>16 int8 → 16 int16, the eight pairs as the 32-bit lanes of one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Pairs(sbyte* source) => Avx2.ConvertToVector256Int16(Vector128.Load(source)).AsSingle();
}
