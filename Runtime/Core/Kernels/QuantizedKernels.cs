using GraphCompiler.Runtime.Quantization;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>The int8 kernels of the quantized graph variant (inference only).</summary>
public static partial class Kernels
{
    /// <summary>y = dequant(quant(x) · Wqᵀ) + b, GELU after the bias when <paramref name="gelu"/>.
    /// x f32 [..., K] is quantized per tensor, symmetric: q = clamp(round(x / s), ±127) (half to even), with s the
    /// calibrated <paramref name="inputScale"/> (f32, shape []) in <see cref="ActivationQuantization.Static"/> mode or
    /// max|x| / 127 of this x in <see cref="ActivationQuantization.Dynamic"/> mode (1 for an all-zero x). An i8 x was
    /// already quantized with <paramref name="inputScale"/> by its producer (<see cref="QuantizedLinearRequantize"/>)
    /// and is used as it is, in either mode.
    /// <paramref name="weight"/> i8 [N, K] with per-output-channel scales <paramref name="weightScale"/> f32 [N];
    /// the GEMM is exact int8 × int8 → int32 (<see cref="Int8Gemm"/>), and y[m, n] = acc[m, n]·(s·wₙ) + bₙ in f32.</summary>
    public static Tensor QuantizedLinear(Tensor x, Tensor inputScale, Tensor weight, Tensor weightScale, Tensor? bias, bool gelu, ActivationQuantization mode) =>
        QuantizedLinear(x, inputScale, weight, weightScale, bias, gelu, mode, outputScale: null, cpuLoops: true);

    /// <summary><see cref="QuantizedLinear(Tensor, Tensor, Tensor, Tensor, Tensor?, bool, ActivationQuantization)"/>
    /// whose result feeds the next GEMM: in <see cref="ActivationQuantization.Static"/> mode it is requantized in the
    /// same pass with that GEMM's calibrated <paramref name="outputScale"/> (f32 []) and returned as i8 — the f32
    /// activation is never written. In <see cref="ActivationQuantization.Dynamic"/> mode the next GEMM quantizes per
    /// batch from the values themselves, so the result stays f32.</summary>
    public static Tensor QuantizedLinearRequantize(Tensor x, Tensor inputScale, Tensor weight, Tensor weightScale, Tensor? bias, bool gelu, Tensor outputScale, ActivationQuantization mode)
    {
        ArgumentNullException.ThrowIfNull(outputScale);
        return QuantizedLinear(x, inputScale, weight, weightScale, bias, gelu, mode, outputScale, cpuLoops: true);
    }

    /// <summary><paramref name="cpuLoops"/> false forces the torch-op path every device takes (tests compare the two).</summary>
    internal static Tensor QuantizedLinear(Tensor x, Tensor inputScale, Tensor weight, Tensor weightScale, Tensor? bias, bool gelu, ActivationQuantization mode, Tensor? outputScale, bool cpuLoops)
    {
        CheckQuantizedLinear(x, inputScale, weight, weightScale, bias, mode, outputScale);
        var (k, n) = (weight.shape[1], weight.shape[0]);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var requantize = outputScale is not null && mode == ActivationQuantization.Static;
        var outputType = requantize ? ScalarType.Int8 : ScalarType.Float32;
        var x2 = x.reshape(-1, k);
        var shape = x.shape.ToArray();
        shape[^1] = n;
        if (x2.shape[0] == 0)
        {
            return empty(shape, outputType, x.device).MoveToOuterDisposeScope();
        }

        var m = x2.shape[0];
        var bits = VectorWidth.Current;
        if (cpuLoops && Int8Gemm.Choose(bits) == Int8GemmBackend.Packed && PackedInt8Gemm.For(bits) is { } variant &&
            PackedInt8Gemm.Fits(m, n, k) && QuantizedCpuLoops.Applies(bias is null ? new[] { x2, weight, weightScale } : new[] { x2, weight, weightScale, bias }))
        {
            return PackedQuantizedLinear(variant, bits, x2, inputScale, weight, weightScale, bias, gelu, mode, requantize ? outputScale : null)
                .view(shape).MoveToOuterDisposeScope();
        }

        var workspace = QuantizedWorkspace.For(x.device);
        Tensor scale, q;
        if (x.dtype == ScalarType.Int8)
        {
            (scale, q) = (inputScale, x2.contiguous());
        }
        else
        {
            scale = mode == ActivationQuantization.Static ? inputScale : DynamicActivationScale(x2);
            q = workspace.Quantized(m * k).view(m, k);
            if (cpuLoops && QuantizedCpuLoops.Applies(x2))
            {
                QuantizedCpuLoops.Quantize(x2, scale.item<float>(), q);
            }
            else
            {
                QuantizeActivationInto(x2, scale, workspace.Scaled(m * k).view(m, k), q);
            }
        }

        var acc = workspace.Accumulators(m * n).view(m, n);
        using (var wt = weight.t())
        {
            Int8Gemm.MatMulInto(q, wt, acc);
        }

        // y = (f32)acc · (s·w) + b with the scales combined into one [N] vector first, then GELU and the requantize.
        // On the CPU one pass; otherwise int32 → f32 once, then each step in place (a mixed-dtype acc · scales op is
        // not vectorised in libtorch and costs several times these passes).
        using var combined = weightScale.mul(scale);
        var output = empty(new[] { m, n }, outputType, x.device);
        if (cpuLoops && QuantizedCpuLoops.Applies(bias is null ? new[] { combined, acc } : new[] { combined, acc, bias }))
        {
            if (requantize)
            {
                QuantizedCpuLoops.DequantizeToInt8(acc, combined, bias, gelu, outputScale!.item<float>(), output);
            }
            else
            {
                QuantizedCpuLoops.Dequantize(acc, combined, bias, gelu, output);
            }
        }
        else
        {
            var y = requantize ? acc.to(ScalarType.Float32) : output.copy_(acc);
            y.mul_(combined);
            if (bias is not null)
            {
                y.add_(bias);
            }

            if (gelu)
            {
                y.gelu_();
            }

            if (requantize)
            {
                QuantizeActivationInto(y, outputScale!, y, output);
            }
        }

        return output.view(shape).MoveToOuterDisposeScope();
    }

    /// <summary>QuantizedLinear as one pass of <see cref="PackedInt8Gemm"/>: x quantized as its rows are loaded, the
    /// epilogue (dequantize, bias, GELU, requantize) applied to each block of accumulators while it is in cache.</summary>
    private static unsafe Tensor PackedQuantizedLinear(PackedInt8Gemm.Variant variant, int bits, Tensor x2, Tensor inputScale, Tensor weight, Tensor weightScale,
        Tensor? bias, bool gelu, ActivationQuantization mode, Tensor? outputScale)
    {
        var (m, k, n) = (x2.shape[0], x2.shape[1], weight.shape[0]);
        var quantized = x2.dtype == ScalarType.Int8;
        float scale;
        if (quantized || mode == ActivationQuantization.Static)
        {
            scale = inputScale.item<float>();
        }
        else
        {
            using var dynamic = DynamicActivationScale(x2);
            scale = dynamic.item<float>();
        }

        using var combined = weightScale.mul(scale);
        var output = empty(new[] { m, n }, outputScale is null ? ScalarType.Float32 : ScalarType.Int8, x2.device);
        var epilogue = new QuantizedCpuLoops.Epilogue((float*)TensorPointers.First(combined), bias is null ? null : (float*)TensorPointers.First(bias),
            gelu, outputScale?.item<float>() ?? 0f, TensorPointers.First(output), (int)n);
        var operand = new PackedInt8Gemm.Operand(TensorPointers.First(x2), k, IsFloat: !quantized, scale);
        PackedInt8Gemm.Run(variant, bits, operand, (sbyte*)TensorPointers.First(weight), k, (int)m, (int)n, (int)k, new PackedInt8Gemm.Output(epilogue, 0));
        return output;
    }

    /// <summary>Embedding lookup in an int8 table: rows of <paramref name="table"/> i8 [V, H] gathered by
    /// <paramref name="ids"/> (i64, any shape), converted to f32 and multiplied by their row scales
    /// <paramref name="scale"/> f32 [V] → f32 [..., H]. Only the looked-up rows are dequantized.</summary>
    public static Tensor QuantizedEmbedding(Tensor ids, Tensor table, Tensor scale)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(scale);
        if (table.dtype != ScalarType.Int8 || table.dim() != 2)
        {
            throw new ArgumentException($"QuantizedEmbedding: table must be i8 [V, H], got {table.dtype} {Dims(table)}", nameof(table));
        }

        if (scale.dtype != ScalarType.Float32 || scale.dim() != 1 || scale.shape[0] != table.shape[0])
        {
            throw new ArgumentException($"QuantizedEmbedding: scale must be f32 [{table.shape[0]}] (one per table row), got {scale.dtype} {Dims(scale)}", nameof(scale));
        }

        if (ids.dtype != ScalarType.Int64)
        {
            throw new ArgumentException($"QuantizedEmbedding: ids must be i64, got {ids.dtype} {Dims(ids)}", nameof(ids));
        }

        foreach (var (t, name) in new[] { (table, nameof(table)), (scale, nameof(scale)) })
        {
            if (!Int8Gemm.SameDevice(t, ids))
            {
                throw new ArgumentException($"QuantizedEmbedding: {name} is on {t.device}, ids on {ids.device}", name);
            }
        }

        var shape = ids.shape.Append(table.shape[1]).ToArray();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var flat = ids.reshape(-1);
        var y = table.index_select(0, flat).to(ScalarType.Float32);
        y.mul_(scale.index_select(0, flat).unsqueeze(1));
        return y.view(shape).MoveToOuterDisposeScope();
    }

    /// <summary>An observation point of a calibration run: hands x to the observer (if any) and returns x itself.</summary>
    public static Tensor Observe(Tensor x, IActivationObserver? observer, string slot, string kind)
    {
        observer?.Observe(slot, kind, x);
        return x;
    }

    /// <summary>clamp(round(x / scale), ±127) as int8; scale a tensor of one element (kept on the device: no sync).</summary>
    public static Tensor QuantizeActivation(Tensor x, Tensor scale)
    {
        using var scaled = x.div(scale);
        scaled.round_().clamp_(-127, 127);
        return scaled.to(ScalarType.Int8);
    }

    /// <summary><see cref="QuantizeActivation"/> through caller-owned buffers shaped like x (f32 and i8): the same
    /// passes, without the fresh allocations whose page faults cost more than the passes themselves.</summary>
    private static void QuantizeActivationInto(Tensor x, Tensor scale, Tensor scaled, Tensor quantized)
    {
        scaled.copy_(x).div_(scale).round_().clamp_(-127, 127);
        quantized.copy_(scaled);
    }

    /// <summary>Frees the calling thread's QuantizedLinear scratch buffers (they are otherwise kept for the next call).</summary>
    public static void ReleaseQuantizedWorkspace()
    {
        QuantizedWorkspace.Release();
        PackedInt8Gemm.Release();
    }

    /// <summary>max|x| / 127, or 1 when x is all zero, as a scalar tensor on x's device.</summary>
    public static Tensor DynamicActivationScale(Tensor x)
    {
        if (x.numel() == 0)
        {
            return ones(Array.Empty<long>(), ScalarType.Float32, x.device);
        }

        // aminmax is one vectorised pass; linalg.vector_norm(x, ∞) is an order of magnitude slower on CPU.
        var (min, max) = x.aminmax();
        using (min)
        using (max)
        {
            using var amax = max.maximum(min.neg_());
            using var zero = amax.eq(0);
            return amax.div(127f).masked_fill_(zero, 1f);
        }
    }

    private static void CheckQuantizedLinear(Tensor x, Tensor inputScale, Tensor weight, Tensor weightScale, Tensor? bias, ActivationQuantization mode, Tensor? outputScale)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(weightScale);
        if (weight.dtype != ScalarType.Int8 || weight.dim() != 2 || weight.shape[1] == 0)
        {
            throw new ArgumentException($"QuantizedLinear: weight must be i8 [N, K] with K ≥ 1, got {weight.dtype} {Dims(weight)}", nameof(weight));
        }

        var (n, k) = (weight.shape[0], weight.shape[1]);
        if (x.dtype is not (ScalarType.Float32 or ScalarType.Int8) || x.dim() < 1 || x.shape[^1] != k)
        {
            throw new ArgumentException($"QuantizedLinear: x must be f32 (or i8, already quantized) [..., {k}] for weight {Dims(weight)}, got {x.dtype} {Dims(x)}", nameof(x));
        }

        if (weightScale.dtype != ScalarType.Float32 || weightScale.dim() != 1 || weightScale.shape[0] != n)
        {
            throw new ArgumentException($"QuantizedLinear: weightScale must be f32 [{n}], got {weightScale.dtype} {Dims(weightScale)}", nameof(weightScale));
        }

        if (bias is not null && (bias.dtype != ScalarType.Float32 || bias.dim() != 1 || bias.shape[0] != n))
        {
            throw new ArgumentException($"QuantizedLinear: bias must be f32 [{n}], got {bias.dtype} {Dims(bias)}", nameof(bias));
        }

        if (mode is not (ActivationQuantization.Static or ActivationQuantization.Dynamic))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "QuantizedLinear: unknown activation quantization mode");
        }

        // The calibrated scale is read in static mode and whenever x arrives quantized.
        var usesInputScale = mode == ActivationQuantization.Static || x.dtype == ScalarType.Int8;
        if (usesInputScale)
        {
            CheckScalarScale(inputScale, nameof(inputScale));
        }

        var usesOutputScale = outputScale is not null && mode == ActivationQuantization.Static;
        if (usesOutputScale)
        {
            CheckScalarScale(outputScale!, nameof(outputScale));
        }

        foreach (var (t, name) in new[] { (weight, nameof(weight)), (weightScale, nameof(weightScale)), (bias, nameof(bias)), (usesInputScale ? inputScale : null, nameof(inputScale)), (usesOutputScale ? outputScale : null, nameof(outputScale)) })
        {
            if (t is not null && !Int8Gemm.SameDevice(t, x))
            {
                throw new ArgumentException($"QuantizedLinear: {name} is on {t.device}, x on {x.device}", name);
            }
        }
    }

    private static void CheckScalarScale(Tensor scale, string name)
    {
        ArgumentNullException.ThrowIfNull(scale, name);
        if (scale.dtype != ScalarType.Float32 || scale.dim() != 0)
        {
            throw new ArgumentException($"QuantizedLinear: {name} must be an f32 scalar tensor (shape []), got {scale.dtype} {Dims(scale)}", name);
        }
    }

    private static string Dims(Tensor t) => "[" + string.Join(", ", t.shape) + "]";

    /// <summary>Per-thread scratch for QuantizedLinear, grown to the largest call seen and reused: the int32
    /// accumulators are as large as the output, and a fresh buffer of that size each call costs a page fault per 4 KiB
    /// (measured: it doubled the kernel's time at MiniLM sizes), while a reused one stays mapped. One workspace per
    /// device; the tensors are kept out of every dispose scope and live until <see cref="ReleaseQuantizedWorkspace"/>
    /// or the thread's end.</summary>
    private sealed class QuantizedWorkspace
    {
        [ThreadStatic]
        private static Dictionary<string, QuantizedWorkspace>? _perDevice;

        private readonly Device _device;
        private Tensor? _scaled, _quantized, _accumulators;

        private QuantizedWorkspace(Device device) => _device = device;

        public static QuantizedWorkspace For(Device device)
        {
            _perDevice ??= new Dictionary<string, QuantizedWorkspace>(StringComparer.Ordinal);
            var key = device.ToString();
            if (!_perDevice.TryGetValue(key, out var workspace))
            {
                workspace = new QuantizedWorkspace(device);
                _perDevice.Add(key, workspace);
            }

            return workspace;
        }

        public static void Release()
        {
            if (_perDevice is null)
            {
                return;
            }

            foreach (var workspace in _perDevice.Values)
            {
                workspace._scaled?.Dispose();
                workspace._quantized?.Dispose();
                workspace._accumulators?.Dispose();
            }

            _perDevice = null;
        }

        public Tensor Scaled(long count) => Slice(ref _scaled, ScalarType.Float32, count);

        public Tensor Quantized(long count) => Slice(ref _quantized, ScalarType.Int8, count);

        public Tensor Accumulators(long count) => Slice(ref _accumulators, ScalarType.Int32, count);

        /// <summary>The first <paramref name="count"/> elements of the buffer (a view in the caller's scope).</summary>
        private Tensor Slice(ref Tensor? buffer, ScalarType dtype, long count)
        {
            if (buffer is null || buffer.numel() < count)
            {
                buffer?.Dispose();
                buffer = empty(new[] { count }, dtype, _device).DetachFromDisposeScope();
            }

            return buffer.narrow(0, 0, count);
        }
    }
}
