using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>Where <see cref="Int8Gemm"/> computes a CPU product.</summary>
public enum Int8GemmBackend
{
    /// <summary>libtorch's <c>_int_mm</c>: oneDNN's VNNI kernels (vpdpbusd) on a CPU with AVX512-VNNI.</summary>
    OneDnn,

    /// <summary><see cref="PackedInt8Gemm"/>: the project's own kernel over int16 pairs (SSE2, AVX2, AVX-VNNI, AVX-512BW).</summary>
    Packed,

    /// <summary>float64 matmul, exact for these sizes: where no vector kernel runs.</summary>
    Exact,
}

/// <summary>int8 × int8 → int32 matrix products, exact on every backend. On the CPU: libtorch's <c>_int_mm</c> where
/// the CPU has AVX512-VNNI (oneDNN's kernel; without VNNI libtorch falls back to a scalar triple loop, measured ~50×
/// slower than fp32 on an AMD Zen 3), else <see cref="PackedInt8Gemm"/> at the CPU's vector width, else float64.
/// <c>GRAPHCOMPILER_INT8_GEMM=onednn|packed|exact</c> overrides the choice (benchmarks compare them that way).
/// <c>_int_mm</c>, which TorchSharp does not expose, is reached through the C++ entry point libtorch_cpu exports,
/// <c>at::_ops::_int_mm_out::call(const Tensor&amp; self, const Tensor&amp; mat2, Tensor&amp; out)</c>, with TorchSharp
/// tensor handles (each an <c>at::Tensor*</c>). A C++ exception thrown through that call would take the process down,
/// so everything libtorch checks is checked here first and reported as an <see cref="ArgumentException"/>.
/// Off the CPU the product is computed exactly in float64.</summary>
public static class Int8Gemm
{
    /// <summary>Itanium-mangled <c>at::_ops::_int_mm_out::call</c>.</summary>
    public const string Symbol = "_ZN2at4_ops11_int_mm_out4callERKNS_6TensorES4_RS2_";

    /// <summary>Largest K whose int32 sums cannot overflow: |a·b| ≤ 128·128 per term.</summary>
    public const long MaxK = int.MaxValue / (128 * 128);

    private static readonly Lazy<NativeEntry> Native = new(Resolve, LazyThreadSafetyMode.ExecutionAndPublication);

    private static readonly Int8GemmBackend? Forced = Environment.GetEnvironmentVariable("GRAPHCOMPILER_INT8_GEMM")?.ToLowerInvariant() switch
    {
        null or "" => null,
        "onednn" => Int8GemmBackend.OneDnn,
        "packed" => Int8GemmBackend.Packed,
        "exact" => Int8GemmBackend.Exact,
        var other => throw new InvalidOperationException($"GRAPHCOMPILER_INT8_GEMM='{other}': expected onednn, packed or exact"),
    };

    /// <summary>True when libtorch_cpu with the <c>_int_mm.out</c> entry point is loaded in this process.</summary>
    public static bool IsNativeAvailable => Native.Value.Call != IntPtr.Zero;

    /// <summary>Where the native entry point was found, or why it was not.</summary>
    public static string NativeDescription => Native.Value.Description;

    /// <summary>Whether the CPU has AVX512-VNNI (CPUID leaf 7, ECX bit 11), what oneDNN's int8 kernels need.</summary>
    public static bool HasAvx512Vnni { get; } = X86Base.IsSupported && (X86Base.CpuId(7, 0).Ecx & (1 << 11)) != 0;

    /// <summary>Whether libtorch's oneDNN will run its VNNI kernels: the CPU has AVX512-VNNI and ONEDNN_MAX_CPU_ISA
    /// (or its older name DNNL_MAX_CPU_ISA) does not cap it below them. Capped to AVX2 or AVX512_CORE, oneDNN multiplies
    /// with vpmaddubsw, whose int16 pair sums saturate: measured on a Zen 5 under ONEDNN_MAX_CPU_ISA=AVX2, _int_mm then
    /// gave products off by up to 28 after dequantization, so it is not used there.</summary>
    public static bool OneDnnUsesVnni { get; } = HasAvx512Vnni && IsaCapAllowsVnni(
        Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") is { Length: > 0 } cap ? cap : Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA"));

    /// <summary>True for no cap, ALL/DEFAULT, and the oneDNN ISA names at or above AVX512_CORE_VNNI.</summary>
    internal static bool IsaCapAllowsVnni(string? cap)
    {
        var name = cap?.Trim().ToUpperInvariant();
        return string.IsNullOrEmpty(name) || name is "ALL" or "DEFAULT" || name.StartsWith("AVX512_CORE_", StringComparison.Ordinal) || name.StartsWith("AVX10", StringComparison.Ordinal);
    }

    /// <summary>The CPU backend products run on from this thread (see <see cref="VectorWidth.Current"/>).</summary>
    public static Int8GemmBackend Backend => Choose(VectorWidth.Current);

    /// <summary>What the CPU products run on, in words (for logs and benchmark reports).</summary>
    public static string Describe()
    {
        var bits = VectorWidth.Current;
        return Choose(bits) switch
        {
            Int8GemmBackend.OneDnn => "libtorch _int_mm (oneDNN, AVX512-VNNI)",
            Int8GemmBackend.Packed => $"packed int16-pair kernel ({PackedInt8Gemm.For(bits)}, {bits}-bit)",
            _ => "float64 matmul (no vector kernel on this CPU)",
        };
    }

    internal static Int8GemmBackend Choose(int bits)
    {
        if (Forced is { } forced)
        {
            return forced;
        }

        if (bits == 512 && OneDnnUsesVnni && IsNativeAvailable)
        {
            return Int8GemmBackend.OneDnn;
        }

        return PackedInt8Gemm.For(bits) is null ? Int8GemmBackend.Exact : Int8GemmBackend.Packed;
    }

    /// <summary>a [M, K] int8 · b [K, N] int8 → a new int32 [M, N]. b may be the transposed view of an [N, K] weight.</summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        CheckOperands(a, b);
        var result = empty(new[] { a.shape[0], b.shape[1] }, ScalarType.Int32, a.device);
        try
        {
            MatMulInto(a, b, result);
        }
        catch
        {
            result.Dispose();
            throw;
        }

        return result;
    }

    /// <summary>a [M, K] int8 · b [K, N] int8 written into <paramref name="result"/>, a contiguous int32 [M, N].</summary>
    public static void MatMulInto(Tensor a, Tensor b, Tensor result)
    {
        CheckOperands(a, b);
        ArgumentNullException.ThrowIfNull(result);
        var (m, n) = (a.shape[0], b.shape[1]);
        if (result.dtype != ScalarType.Int32)
        {
            throw new ArgumentException($"Int8Gemm: result must be int32, got {result.dtype}", nameof(result));
        }

        if (result.dim() != 2 || result.shape[0] != m || result.shape[1] != n)
        {
            throw new ArgumentException($"Int8Gemm: result must be [{m}, {n}], got {Shape(result)}", nameof(result));
        }

        if (!result.is_contiguous())
        {
            throw new ArgumentException($"Int8Gemm: result {Shape(result)} must be contiguous", nameof(result));
        }

        if (!SameDevice(result, a))
        {
            throw new ArgumentException($"Int8Gemm: result is on {result.device}, the operands on {a.device}", nameof(result));
        }

        if (result.requires_grad)
        {
            throw new ArgumentException("Int8Gemm: result must not require grad (out= ops are not differentiable)", nameof(result));
        }

        if (result.numel() == 0 || a.shape[1] == 0)
        {
            result.zero_();
            return;
        }

        if (a.device_type != DeviceType.CPU)
        {
            // libtorch's CUDA _int_mm has its own size limits, and other backends none; float64 holds every int32
            // sum exactly (|sum| < 2³¹ < 2⁵³), so this path is exact wherever float64 matmul runs.
            ExactInto(a, b, result);
            return;
        }

        var bits = VectorWidth.Current;
        switch (Choose(bits))
        {
            case Int8GemmBackend.OneDnn:
                OneDnnInto(a, b, result);
                break;
            case Int8GemmBackend.Packed when PackedInt8Gemm.For(bits) is { } variant && PackedInt8Gemm.Fits(a.shape[0], b.shape[1], a.shape[1]):
                PackedInto(variant, bits, a, b, result);
                break;
            default:
                ExactInto(a, b, result);
                break;
        }
    }

    /// <summary>The product on libtorch's <c>_int_mm</c> (tests and benchmarks call it directly).</summary>
    internal static void OneDnnInto(Tensor a, Tensor b, Tensor result)
    {
        var entry = Native.Value;
        if (entry.Call == IntPtr.Zero)
        {
            throw new InvalidOperationException(
                $"Int8Gemm: the int8 GEMM entry point {Symbol} (at::_ops::_int_mm_out::call) is not available: {entry.Description}. " +
                "This needs the libtorch_cpu of libtorch-cpu-linux-x64 2.10 (a different libtorch, or a non-Linux build, exports another symbol)");
        }

        // oneDNN takes any strides but copies odd ones; give it a row-major a and a row- or column-major b.
        using var lhs = IsRowMajor(a) ? a.alias() : a.contiguous();
        using var rhs = IsRowMajor(b) || IsColumnMajor(b) ? b.alias() : b.contiguous();
        CallNative(entry.Call, lhs, rhs, result);
    }

    /// <summary>The product on <see cref="PackedInt8Gemm"/>'s <paramref name="variant"/> kernel: a row-major a and b as
    /// the [N, K] rows it is the transpose of (a weight's own layout), copied into those layouts where they are not.</summary>
    internal static unsafe void PackedInto(PackedInt8Gemm.Variant variant, int bits, Tensor a, Tensor b, Tensor result)
    {
        using var lhs = IsRowMajor(a) ? a.alias() : a.contiguous();
        using var weight = IsColumnMajor(b) ? b.t() : b.t().contiguous();
        var (m, k, n) = ((int)a.shape[0], (int)a.shape[1], (int)b.shape[1]);
        var operand = new PackedInt8Gemm.Operand(TensorPointers.First(lhs), lhs.stride(0), IsFloat: false, Scale: 0);
        var output = new PackedInt8Gemm.Output(null, TensorPointers.First(result));
        PackedInt8Gemm.Run(variant, bits, operand, (sbyte*)TensorPointers.First(weight), weight.stride(0), m, n, k, output);
    }

    /// <summary>The product computed in float64 (exact for int8 operands with K ≤ <see cref="MaxK"/>); the reference
    /// and the path for devices without the native kernel.</summary>
    public static void ExactInto(Tensor a, Tensor b, Tensor result)
    {
        using var scope = NewDisposeScope();
        var product = a.to(ScalarType.Float64).matmul(b.to(ScalarType.Float64));
        result.copy_(product);
    }

    private static unsafe void CallNative(IntPtr call, Tensor a, Tensor b, Tensor result)
    {
        var fn = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr>)call;
        var returned = fn(a.Handle, b.Handle, result.Handle);
        GC.KeepAlive(a);
        GC.KeepAlive(b);
        GC.KeepAlive(result);
        if (returned != result.Handle)
        {
            throw new InvalidOperationException($"Int8Gemm: {Symbol} returned an unexpected tensor; the libtorch ABI does not match");
        }
    }

    private static void CheckOperands(Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.dim() != 2 || b.dim() != 2)
        {
            throw new ArgumentException($"Int8Gemm: operands must be matrices, got a {Shape(a)} and b {Shape(b)}");
        }

        if (a.dtype != ScalarType.Int8 || b.dtype != ScalarType.Int8)
        {
            throw new ArgumentException($"Int8Gemm: operands must be int8, got a {a.dtype} and b {b.dtype}");
        }

        if (a.shape[1] != b.shape[0])
        {
            throw new ArgumentException($"Int8Gemm: a {Shape(a)} and b {Shape(b)} cannot be multiplied (K {a.shape[1]} ≠ {b.shape[0]})");
        }

        if (a.shape[1] > MaxK)
        {
            throw new ArgumentException($"Int8Gemm: K = {a.shape[1]} could overflow the int32 sums (at most {MaxK})");
        }

        if (!SameDevice(a, b))
        {
            throw new ArgumentException($"Int8Gemm: a is on {a.device}, b on {b.device}");
        }

        if (a.is_sparse || b.is_sparse)
        {
            throw new ArgumentException("Int8Gemm: operands must be dense (strided) tensors");
        }
    }

    private static bool IsRowMajor(Tensor t) => t.stride(1) == 1 && t.stride(0) >= Math.Max(1, t.shape[1]);

    private static bool IsColumnMajor(Tensor t) => t.stride(0) == 1 && t.stride(1) >= Math.Max(1, t.shape[0]);

    internal static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;

    private static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";

    private readonly record struct NativeEntry(IntPtr Call, string Description);

    private static NativeEntry Resolve()
    {
        var (call, description) = FindLibTorchExport(Symbol);
        return new NativeEntry(call, description);
    }

    /// <summary>The address of <paramref name="symbol"/> in libtorch_cpu or a library it depends on (dlsym on its
    /// handle searches those too), with where it was found or what was tried; zero when absent.</summary>
    internal static (IntPtr Address, string Description) FindLibTorchExport(string symbol)
    {
        // TorchSharp loads libtorch_cpu as a dependency of its native library on first use; make sure that happened.
        torch.InitializeDeviceType(DeviceType.CPU);
        var tried = new List<string>();
        foreach (var candidate in Candidates())
        {
            if (!NativeLibrary.TryLoad(candidate, out var handle))
            {
                tried.Add(candidate + " (not loadable)");
                continue;
            }

            if (NativeLibrary.TryGetExport(handle, symbol, out var address))
            {
                return (address, candidate);
            }

            tried.Add(candidate + " (no such export)");
        }

        return (IntPtr.Zero, tried.Count == 0 ? "no libtorch_cpu found" : "tried " + string.Join("; ", tried));
    }

    /// <summary>The bare soname first (the dynamic loader returns the copy already mapped), then the path of the copy
    /// this process mapped, then the usual NuGet layouts beside the application.</summary>
    private static IEnumerable<string> Candidates()
    {
        var name = OperatingSystem.IsMacOS() ? "libtorch_cpu.dylib" : OperatingSystem.IsWindows() ? "torch_cpu.dll" : "libtorch_cpu.so";
        yield return name;
        if (OperatingSystem.IsLinux())
        {
            string[] maps;
            try
            {
                maps = File.ReadAllLines("/proc/self/maps");
            }
            catch (IOException)
            {
                maps = Array.Empty<string>();
            }
            catch (UnauthorizedAccessException)
            {
                maps = Array.Empty<string>();
            }

            foreach (var path in maps.Select(l => l.IndexOf('/') is var i and >= 0 ? l[i..] : "")
                         .Where(p => p.EndsWith("/" + name, StringComparison.Ordinal)).Distinct())
            {
                yield return path;
            }
        }

        var rid = RuntimeInformation.RuntimeIdentifier;
        foreach (var path in new[]
                 {
                     Path.Combine(AppContext.BaseDirectory, name),
                     Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native", name),
                 })
        {
            if (File.Exists(path))
            {
                yield return path;
            }
        }
    }
}
