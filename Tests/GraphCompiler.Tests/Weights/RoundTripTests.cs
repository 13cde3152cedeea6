using System.Text;
using System.Text.Json;
using GraphCompiler.ModelDefs;
using GraphCompiler.Runtime.Weights;
using TorchSharp;
using Xunit;
using static GraphCompiler.Tests.Weights.WeightTestKit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Weights;

/// <summary>Write → read gives back exactly what was written, in every format this project writes.</summary>
public sealed class RoundTripTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static Dictionary<string, Tensor> Sample(IEnumerable<ScalarType> dtypes)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var shapes = new[] { Array.Empty<long>(), new long[] { 0 }, new long[] { 3, 0, 2 }, new long[] { 5 }, new long[] { 2, 3, 4 } };
        var generator = new Random(7);
        foreach (var dtype in dtypes)
        {
            for (var s = 0; s < shapes.Length; s++)
            {
                using var values = randn(shapes[s], dtype: ScalarType.Float64, generator: null) * 100;
                var t = dtype == ScalarType.Bool ? values.gt(0) : values.to(dtype);
                // Names deliberately out of order, so sorting is observable.
                result[$"z{generator.Next(1000):D3}.{dtype}.{s}"] = t;
            }
        }

        return result;
    }

    [Fact]
    public void SafeTensors_AllDtypesAndShapesRoundTrip()
    {
        var dtypes = new[]
        {
            ScalarType.Float64, ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Int64,
            ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
        };
        var tensors = Sample(dtypes);
        // A non-contiguous view is written as its logical (row-major) contents.
        using var square = arange(12, dtype: ScalarType.Float32).reshape(3, 4);
        tensors["a.transposed"] = square.t();
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcödé ✓" };
        var path = _dir.File("rt.safetensors");
        try
        {
            SafeTensors.Write(path, tensors, metadata);
            using var read = SafeTensors.Read(path);
            Assert.Equal(tensors.Keys.Order(StringComparer.Ordinal), read.Keys.Order(StringComparer.Ordinal));
            foreach (var (name, t) in tensors)
            {
                AssertIdentical(t, read[name], name);
            }

            Assert.Equal(metadata, read.Metadata);
            using var expectedT = square.t().contiguous();
            Assert.Equal(expectedT.data<float>().ToArray(), read["a.transposed"].data<float>().ToArray());

            // The header lists the tensors sorted by name, with data in that order and 8-byte-aligned data start.
            var bytes = File.ReadAllBytes(path);
            var headerLength = (long)BitConverter.ToUInt64(bytes, 0);
            Assert.Equal(0, headerLength % 8);
            using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
            var names = doc.RootElement.EnumerateObject().Select(p => p.Name).Where(n => n != "__metadata__").ToList();
            Assert.Equal(names.Order(StringComparer.Ordinal), names);
            var begins = names.Select(n => doc.RootElement.GetProperty(n).GetProperty("data_offsets")[0].GetInt64()).ToList();
            Assert.Equal(begins.Order(), begins);
            Assert.Equal(bytes.Length - 8 - headerLength, doc.RootElement.GetProperty(names[^1]).GetProperty("data_offsets")[1].GetInt64());
        }
        finally
        {
            foreach (var t in tensors.Values)
            {
                t.Dispose();
            }
        }
    }

    [Fact]
    public void SafeTensors_EmptySetRoundTrips()
    {
        var path = _dir.File("empty.safetensors");
        SafeTensors.Write(path, Array.Empty<KeyValuePair<string, Tensor>>());
        using var read = SafeTensors.Read(path);
        Assert.Empty(read);
        Assert.Empty(read.Metadata);
    }

    [Fact]
    public void SafeTensors_OverwriteIsAtomicAndLeavesNoTempFiles()
    {
        var path = _dir.File("w.safetensors");
        using var a = ones(2);
        using var b = zeros(3);
        SafeTensors.Write(path, new[] { KeyValuePair.Create("x", a) });
        SafeTensors.Write(path, new[] { KeyValuePair.Create("y", b) });
        using var read = SafeTensors.Read(path);
        Assert.Equal(new[] { "y" }, read.Keys);
        Assert.Equal(new[] { "w.safetensors" }, Directory.GetFiles(_dir.Root).Select(Path.GetFileName));
    }

    [Fact]
    public void MxNetParams_AllDtypesAndShapesRoundTrip()
    {
        var dtypes = new[] { ScalarType.Float32, ScalarType.Float64, ScalarType.Float16, ScalarType.Byte, ScalarType.Int32, ScalarType.Int8, ScalarType.Int64 };
        var tensors = Sample(dtypes);
        var path = _dir.File("rt.params");
        try
        {
            MxNetParams.Write(path, tensors);
            using var read = MxNetParams.Read(path);
            Assert.Equal(tensors.Keys.Order(StringComparer.Ordinal), read.Keys.Order(StringComparer.Ordinal));
            foreach (var (name, t) in tensors)
            {
                AssertIdentical(t, read[name], name);
            }
        }
        finally
        {
            foreach (var t in tensors.Values)
            {
                t.Dispose();
            }
        }
    }

    [Fact]
    public void MxNetParams_UnstorableDtypeIsRefusedWithoutLeavingAFile()
    {
        var path = _dir.File("bool.params");
        using var t = ones(new long[] { 2 }, dtype: ScalarType.Bool);
        var ex = Assert.Throws<ArgumentException>(() => MxNetParams.Write(path, new[] { KeyValuePair.Create("flags", t) }));
        Assert.Contains("'flags'", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_dir.Root));
    }

    [Fact]
    public void ProjectCheckpoint_SafeTensorsRoundTripGivesIdenticalOutputs()
    {
        using var scope = NewDisposeScope();
        random.manual_seed(11);
        using var source = new MiniLmClassifierModule();
        using (no_grad())
        {
            // Biases and LayerNorm start at constants; make every parameter distinct so a mix-up would show.
            foreach (var (_, p) in source.named_parameters())
            {
                p.add_(randn_like(p) * 0.05);
            }
        }

        var path = _dir.File("minilm.safetensors");
        var checkpoint = WeightLoader.CheckpointTensors(source).ToList();
        SafeTensors.Write(path, checkpoint, new Dictionary<string, string> { ["model"] = MiniLmClassifierModule.Name });

        random.manual_seed(12);
        using var target = new MiniLmClassifierModule();
        using (var read = SafeTensors.Read(path))
        {
            Assert.Equal(MiniLmClassifierModule.Name, read.Metadata["model"]);
            var report = WeightLoader.Load(target, read);
            Assert.Equal(checkpoint.Count, report.Loaded.Count);
            Assert.Empty(report.LeftInitialised);
        }

        foreach (var ((name, p), (_, q)) in source.named_parameters().Zip(target.named_parameters()))
        {
            Assert.True(Same(p, q), $"parameter {name} differs after the round trip");
        }

        source.eval();
        target.eval();
        var (ids, types, lengths) = Inputs(32, 32, seed: 3);
        using (no_grad())
        {
            var expected = source.forward(ids, types, lengths);
            var actual = target.forward(ids, types, lengths);
            Assert.Equal(new long[] { 32, 2 }, actual.shape);
            Assert.True(Same(expected, actual), $"outputs differ by {(expected - actual).abs().max().item<float>()}");
        }
    }

    /// <summary>Bitwise equality (shape, dtype and every byte).</summary>
    internal static bool Same(Tensor a, Tensor b)
    {
        using var x = a.detach().contiguous();
        using var y = b.detach().contiguous();
        return x.dtype == y.dtype && x.shape.SequenceEqual(y.shape) && x.bytes.SequenceEqual(y.bytes);
    }

    /// <summary>Token ids, token types (pairs: second half type 1) and valid lengths for a batch.</summary>
    internal static (Tensor Ids, Tensor Types, Tensor Lengths) Inputs(int batch, int seq, int seed)
    {
        var gen = new Random(seed);
        var ids = new long[batch * seq];
        var types = new long[batch * seq];
        var lengths = new long[batch];
        for (var b = 0; b < batch; b++)
        {
            lengths[b] = gen.Next(2, seq + 1);
            for (var s = 0; s < lengths[b]; s++)
            {
                ids[(b * seq) + s] = s == 0 ? 101 : gen.Next(1000, 30522);
                types[(b * seq) + s] = s >= lengths[b] / 2 ? 1 : 0;
            }
        }

        return (tensor(ids, new long[] { batch, seq }), tensor(types, new long[] { batch, seq }), tensor(lengths));
    }
}
