using System.Text;
using GraphCompiler.ModelDefs.Zoo;
using GraphCompiler.Runtime.Onnx;
using GraphCompiler.Runtime.Weights;
using Xunit;
using static GraphCompiler.Tests.Weights.WeightTestKit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Weights;

/// <summary>Corrupt, truncated and lying weight files: every one is a <see cref="WeightFileException"/> that names the
/// file and the problem, never a crash, a hang or a giant allocation.</summary>
public sealed class HostileFileTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private void RejectSafeTensors(byte[] bytes, params string[] problem)
    {
        var path = _dir.Write("bad.safetensors", bytes);
        AssertRejected(() => SafeTensors.Read(path), path, problem);
    }

    private static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    [Fact]
    public void SafeTensors_EmptyFile() => RejectSafeTensors(Array.Empty<byte>(), "0 bytes");

    [Fact]
    public void SafeTensors_ThreeByteFile() => RejectSafeTensors(new byte[] { 1, 2, 3 }, "3 bytes");

    [Fact]
    public void SafeTensors_HeaderLengthLargerThanFile() =>
        RejectSafeTensors(SafeTensorsBytes("{}", headerLength: 1000), "header claims 1000 bytes");

    [Fact]
    public void SafeTensors_HeaderLength2Pow63() =>
        RejectSafeTensors(SafeTensorsBytes("{}", headerLength: 1UL << 63), "header claims 9223372036854775808 bytes");

    [Fact]
    public void SafeTensors_HeaderNotJson() => RejectSafeTensors(SafeTensorsBytes("not json at all"), "not JSON");

    [Fact]
    public void SafeTensors_HeaderNotUtf8() =>
        RejectSafeTensors(SafeTensorsBytes("{\"a\":1}").Select((b, i) => i == 10 ? (byte)0xFF : b).ToArray(), "not JSON");

    [Fact]
    public void SafeTensors_HeaderJsonNotAnObject() => RejectSafeTensors(SafeTensorsBytes("[1, 2, 3]"), "must be a JSON object");

    [Fact]
    public void SafeTensors_EntryNotAnObject() => RejectSafeTensors(SafeTensorsBytes("{\"w\": 5}"), "'w'", "needs dtype, shape and data_offsets");

    [Fact]
    public void SafeTensors_DataOffsetsPastTheEnd() =>
        RejectSafeTensors(SafeTensorsBytes("{" + Entry("w", "F32", "[4]", 0, 16) + "}", new byte[8]), "truncated", "'w'");

    [Fact]
    public void SafeTensors_OffsetSpanDiffersFromDtypeTimesShape() =>
        RejectSafeTensors(SafeTensorsBytes("{" + Entry("w", "F32", "[3]", 0, 16) + "}", new byte[16]), "'w'", "needs 12 bytes", "span 16");

    [Fact]
    public void SafeTensors_NegativeDimension() =>
        RejectSafeTensors(SafeTensorsBytes("{" + Entry("w", "F32", "[-1, 4]", 0, 16) + "}", new byte[16]), "'w'", "invalid dimension -1");

    [Fact]
    public void SafeTensors_NegativeOffset() =>
        RejectSafeTensors(SafeTensorsBytes("{" + Entry("w", "F32", "[1]", -4, 0) + "}", new byte[4]), "'w'", "invalid data_offsets");

    [Fact]
    public void SafeTensors_DimensionProductOverflows() =>
        RejectSafeTensors(SafeTensorsBytes("{" + Entry("w", "F32", "[4294967296, 4294967296, 4294967296]", 0, 0) + "}"), "'w'", "impossible shape");

    [Theory]
    [InlineData("F64", "[2305843009213693952]")] // 2^61 elements × 8 bytes = 2^64: wraps to 0 unless checked
    [InlineData("F32", "[4611686018427387904]")] // 2^62 × 4
    [InlineData("F32", "[2147483648, 2147483648]")] // 2^62 elements, 2^64 bytes
    public void SafeTensors_ByteCountOverflowsWithZeroSpan(string dtype, string shape) =>
        RejectSafeTensors(SafeTensorsBytes("{" + Entry("w", dtype, shape, 0, 0) + "}"), "'w'", "impossible shape");

    [Fact]
    public void SafeTensors_HugeButRepresentableShapeAgainstSmallFile() =>
        RejectSafeTensors(SafeTensorsBytes("{" + Entry("w", "F32", "[1099511627776]", 0, 4398046511104) + "}", new byte[8]), "truncated", "'w'");

    [Fact]
    public void SafeTensors_UnsupportedDtype() =>
        RejectSafeTensors(SafeTensorsBytes("{" + Entry("w", "F8_E4M3", "[4]", 0, 4) + "}", new byte[4]), "'w'", "unsupported dtype 'F8_E4M3'");

    [Fact]
    public void SafeTensors_DuplicateNamesInHeader()
    {
        // System.Text.Json's JsonDocument keeps both properties and enumerates both; the reader must not keep either silently.
        var header = "{" + Entry("w", "F32", "[1]", 0, 4) + "," + Entry("w", "F32", "[1]", 4, 8) + "}";
        using (var doc = System.Text.Json.JsonDocument.Parse(header))
        {
            Assert.Equal(2, doc.RootElement.EnumerateObject().Count(p => p.Name == "w"));
        }

        RejectSafeTensors(SafeTensorsBytes(header, new byte[8]), "'w'", "appears twice");
    }

    [Fact]
    public void SafeTensors_OverlappingTensors()
    {
        var header = "{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 4, 12) + "}";
        RejectSafeTensors(SafeTensorsBytes(header, new byte[12]), "'a'", "'b'", "overlap");
    }

    [Fact]
    public void SafeTensors_EmptyTensorInsideAnotherTensorsRangeIsNotAnOverlap()
    {
        // What SafeTensors.Write produces for an empty tensor sorted before a full one: same begin offset.
        var header = "{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[0, 3]", 0, 0) + "," + Entry("c", "F32", "[]", 8, 12) + "}";
        var path = _dir.Write("ok.safetensors", SafeTensorsBytes(header, BitConverter.GetBytes(1f).Concat(BitConverter.GetBytes(2f)).Concat(BitConverter.GetBytes(3f)).ToArray()));
        using var set = SafeTensors.Read(path);
        Assert.Equal(new long[] { 0, 3 }, set["b"].shape);
        Assert.Equal(new[] { 1f, 2f }, set["a"].data<float>().ToArray());
        Assert.Equal(3f, set["c"].item<float>());
    }

    [Fact]
    public void SafeTensors_MissingFileIsAWeightFileException()
    {
        var path = _dir.File("absent.safetensors");
        AssertRejected(() => SafeTensors.Read(path), path, "cannot open");
    }

    // ---- MXNet .params ----

    /// <summary>A .params file written field by field so that any field can lie.</summary>
    private static byte[] Params(Action<BinaryWriter> body, ulong listMagic = MxNetParams.ListMagic, ulong? count = null, int arrays = 1)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        w.Write(listMagic);
        w.Write(0UL);
        w.Write(count ?? (ulong)arrays);
        body(w);
        w.Flush();
        return ms.ToArray();
    }

    private static void DenseArray(BinaryWriter w, long[] shape, int flag = 0, uint magic = MxNetParams.ArrayMagicV2, int storage = 0, byte[]? data = null)
    {
        w.Write(magic);
        w.Write(storage);
        w.Write(shape.Length);
        foreach (var d in shape)
        {
            w.Write(d);
        }

        w.Write(1);
        w.Write(0);
        w.Write(flag);
        w.Write(data ?? new byte[shape.Aggregate(1L, (a, b) => a * b) * 4]);
    }

    private static void Names(BinaryWriter w, params string[] names)
    {
        w.Write((ulong)names.Length);
        foreach (var n in names)
        {
            var b = Encoding.UTF8.GetBytes(n);
            w.Write((ulong)b.Length);
            w.Write(b);
        }
    }

    private void RejectParams(byte[] bytes, params string[] problem)
    {
        var path = _dir.Write("bad.params", bytes);
        AssertRejected(() => MxNetParams.Read(path), path, problem);
    }

    [Fact]
    public void Params_ValidHandWrittenFileReads()
    {
        // The builders below are right when nothing lies: the same bytes without corruption read fine.
        var path = _dir.Write("ok.params", Params(w =>
        {
            DenseArray(w, new long[] { 2 }, data: BitConverter.GetBytes(1.5f).Concat(BitConverter.GetBytes(-2f)).ToArray());
            Names(w, "arg:w");
        }));
        using var set = MxNetParams.Read(path);
        Assert.Equal(new[] { 1.5f, -2f }, set["w"].data<float>().ToArray());
    }

    [Fact]
    public void Params_WrongListMagic() => RejectParams(Params(w => { DenseArray(w, new long[] { 1 }); Names(w, "w"); }, listMagic: 0x113), "magic 0x112");

    [Fact]
    public void Params_EmptyFile() => RejectParams(Array.Empty<byte>(), "not an MXNet .params file");

    [Fact]
    public void Params_CountLargerThanTheFileCanHold() =>
        RejectParams(Params(w => { DenseArray(w, new long[] { 1 }); Names(w, "w"); }, count: 1UL << 40), "array count is 1099511627776");

    [Fact]
    public void Params_TruncatedArrayData()
    {
        var full = Params(w => DenseArray(w, new long[] { 256 }));
        RejectParams(full[..^100], "truncated", "array 0");
    }

    [Fact]
    public void Params_TruncatedInsideTheHeader()
    {
        var full = Params(w => { DenseArray(w, new long[] { 4, 4 }); Names(w, "w"); });
        RejectParams(full[..40], "truncated");
    }

    [Fact]
    public void Params_BadArrayMagic() =>
        RejectParams(Params(w => { DenseArray(w, new long[] { 1 }, magic: 0xF993FAC8); Names(w, "w"); }), "array 0", "magic 0xF993FAC8");

    [Fact]
    public void Params_SparseStorage() =>
        RejectParams(Params(w => { DenseArray(w, new long[] { 1 }, storage: 1); Names(w, "w"); }), "array 0", "storage type 1");

    [Fact]
    public void Params_UnknownDtypeFlag() =>
        RejectParams(Params(w => { DenseArray(w, new long[] { 1 }, flag: 12); Names(w, "w"); }), "array 0", "unknown dtype flag 12");

    [Fact]
    public void Params_NegativeDimension() =>
        RejectParams(Params(w => { DenseArray(w, new long[] { -4 }, data: new byte[16]); Names(w, "w"); }), "array 0", "negative dimension -4");

    [Theory]
    [InlineData(1, 2305843009213693952L)] // f64, 2^61 elements: 2^64 bytes wraps to 0 unless checked
    [InlineData(0, 4611686018427387904L)] // f32, 2^62
    public void Params_ByteCountOverflow(int flag, long dim) =>
        RejectParams(Params(w => { DenseArray(w, new[] { dim }, flag: flag, data: Array.Empty<byte>()); Names(w, "w"); }), "array 0", "impossible shape");

    [Fact]
    public void Params_NamesCountDiffersFromArrayCount() =>
        RejectParams(Params(w => { DenseArray(w, new long[] { 1 }); DenseArray(w, new long[] { 1 }); Names(w, "a"); }, arrays: 2), "2 arrays but 1 names");

    [Fact]
    public void Params_DuplicateNames() =>
        RejectParams(Params(w => { DenseArray(w, new long[] { 1 }); DenseArray(w, new long[] { 1 }); Names(w, "arg:w", "w"); }, arrays: 2), "'w'", "appears twice");

    [Fact]
    public void Params_TrailingBytes() =>
        RejectParams(Params(w => { DenseArray(w, new long[] { 1 }); Names(w, "w"); w.Write(7); }), "4 unexpected bytes");

    // ---- ONNX ----

    private void RejectOnnx(byte[] bytes, params string[] problem)
    {
        var path = _dir.Write("bad.onnx", bytes);
        AssertRejected(() => OnnxWeights.Read(path), path, problem);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Onnx_RandomBytes(int seed)
    {
        var bytes = new byte[4096];
        new Random(seed).NextBytes(bytes);
        RejectOnnx(bytes, "ONNX");
    }

    [Fact]
    public void Onnx_EmptyFile() => RejectOnnx(Array.Empty<byte>(), "not an ONNX model");

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(100_000)]
    [InlineData(-1000)] // all but the last 1000 bytes
    public void Onnx_TruncatedMiniLmModel(int n)
    {
        var model = MiniLmPackage.Read(MiniLmPackage.ModelResource);
        RejectOnnx(n > 0 ? model[..n] : model[..^-n], "ONNX");
    }

    [Fact]
    public void Onnx_SafeTensorsFileGiven()
    {
        var st = _dir.File("w.safetensors");
        using (var t = ones(4, 4))
        {
            SafeTensors.Write(st, new[] { new KeyValuePair<string, Tensor>("fc.weight", t) });
        }

        RejectOnnx(File.ReadAllBytes(st), "ONNX");
    }

    [Fact]
    public void Onnx_ExternalData()
    {
        var init = OnnxFloatInitializer("fc.weight", new long[] { 2, 3 }, values: null, dataLocation: 1);
        RejectOnnx(OnnxModel(OnnxGraph(Array.Empty<byte[]>(), new[] { init })), "'fc.weight'", "external");
    }

    [Fact]
    public void Onnx_RawDataSizeMismatch()
    {
        var init = OnnxFloatInitializer("fc.weight", new long[] { 2, 3 }, new float[] { 1, 2, 3, 4, 5 });
        RejectOnnx(OnnxModel(OnnxGraph(Array.Empty<byte[]>(), new[] { init })), "'fc.weight'", "needs 24 bytes", "has 20");
    }

    [Fact]
    public void Onnx_HugeDimsWithTinyData()
    {
        // 2^40 floats claimed, 4 bytes given: must be refused before allocating 4 TB.
        var init = OnnxFloatInitializer("fc.weight", new long[] { 1L << 40 }, new float[] { 1 });
        RejectOnnx(OnnxModel(OnnxGraph(Array.Empty<byte[]>(), new[] { init })), "'fc.weight'", "has 4");
    }

    [Fact]
    public void Onnx_ByteCountOverflow()
    {
        // 2^62 floats = 2^64 bytes: wraps to 0 unless checked, and an empty raw_data would then "fit".
        var init = OnnxFloatInitializer("fc.weight", new long[] { 1L << 62 }, values: null, raw: Array.Empty<byte>());
        RejectOnnx(OnnxModel(OnnxGraph(Array.Empty<byte[]>(), new[] { init })), "'fc.weight'", "impossible shape");
    }

    [Fact]
    public void Onnx_DuplicateInitializerNames()
    {
        var a = OnnxFloatInitializer("fc.bias", new long[] { 1 }, new float[] { 1 });
        RejectOnnx(OnnxModel(OnnxGraph(Array.Empty<byte[]>(), new[] { a, a })), "'fc.bias'", "twice");
    }

    [Fact]
    public void Onnx_NegativeDimension()
    {
        var init = OnnxFloatInitializer("fc.weight", new long[] { -2, 3 }, new float[] { 1, 2, 3, 4, 5, 6 });
        RejectOnnx(OnnxModel(OnnxGraph(Array.Empty<byte[]>(), new[] { init })), "'fc.weight'", "negative dimension");
    }
    // ---- Found by coverage-guided fuzzing (scripts/fuzz.sh): minimized inputs ----

    /// <summary>A zero makes the tensor empty (0 bytes, so every size check passed), but libtorch computes strides over
    /// max(dim, 1) and threw ExternalException "Stride calculation overflowed" from empty(shape).</summary>
    [Fact]
    public void Fuzz_Params_EmptyShapeWithOverflowingStrides() =>
        RejectParams(Params(w => { DenseArray(w, new long[] { 0, 1L << 40, 1L << 40 }, data: []); Names(w, "w"); }), "array 0", "impossible shape");

    [Fact]
    public void Fuzz_SafeTensors_EmptyShapeWithOverflowingStrides() =>
        RejectSafeTensors(SafeTensorsBytes("{" + Entry("w", "F32", "[0, 1099511627776, 1099511627776]", 0, 0) + "}"), "'w'", "impossible shape");

    [Fact]
    public void Fuzz_Onnx_EmptyShapeWithOverflowingStrides()
    {
        var init = OnnxFloatInitializer("fc.weight", new long[] { 1L << 40, 0, 1L << 40 }, values: null, raw: []);
        RejectOnnx(OnnxModel(OnnxGraph(Array.Empty<byte[]>(), new[] { init })), "'fc.weight'", "impossible shape");
    }

    /// <summary>OnnxModelReader.Floats (the quantizer's reader) multiplied dims unchecked: 2^62 + 1 floats × 4 bytes wraps
    /// to 4, matched a 4-byte payload and sized a float[2^62 + 1] (OverflowException).</summary>
    [Fact]
    public void Fuzz_Onnx_FloatsWithWrappingByteCount()
    {
        var init = OnnxFloatInitializer("fc.weight", new long[] { (1L << 62) + 1 }, values: null, raw: new byte[4]);
        var path = _dir.Write("wrap.onnx", OnnxModel(OnnxGraph(Array.Empty<byte[]>(), new[] { init })));
        var model = OnnxModelReader.Read(path);
        var ex = Assert.Throws<WeightFileException>(() => OnnxModelReader.Floats(model.Initializers[0], path));
        Assert.Equal(path, ex.File);
        Assert.Contains("impossible shape", ex.Problem, StringComparison.Ordinal);
    }
}
