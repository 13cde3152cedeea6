using System.Text;
using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Quantization;
using GraphCompiler.Tests.Weights;
using Xunit;
using static TorchSharp.torch;

namespace GraphCompiler.Tests.Quantization;

public sealed class CalibrationTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void RunStopsAfterMaxBatchesAndReturnsTheCollectorsScales()
    {
        using var scope = NewDisposeScope();
        var batches = Enumerable.Range(1, 10).Select(i => (float)i).ToList();
        var seen = new List<float>();
        var scales = Calibration.Run(batches, 3, (b, observer) =>
        {
            seen.Add(b);
            using var x = full(4, 4, b);
            Assert.False(is_grad_enabled());
            Kernels.Observe(x, observer, "layer.0", ActivationKinds.Other);
            Kernels.Observe(x.neg(), observer, "layer.1", ActivationKinds.GeluOutput);
        }, new CustomizeCollector(-1, 2, ActivationKinds.GeluOutput));
        Assert.Equal(new[] { 1f, 2f, 3f }, seen);
        Assert.Equal(new Dictionary<string, float> { ["layer.0"] = 3f / 127f, ["layer.1"] = 1f / 127f }, scales);
    }

    [Fact]
    public void RunRefusesNothingToCalibrate()
    {
        var collector = new MinMaxCollector();
        var e = Assert.Throws<InvalidOperationException>(() => Calibration.Run(Array.Empty<int>(), 4, (_, _) => { }, collector));
        Assert.Contains("empty", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InvalidOperationException>(() => Calibration.Run(new[] { 1, 2 }, 4, (_, _) => { }, collector));
        Assert.Contains("reported no activations", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => Calibration.Run(new[] { 1 }, 0, (_, _) => { }, collector));
    }

    [Fact]
    public void TableRoundTripsExactly()
    {
        var scales = new Dictionary<string, float>
        {
            ["encoder.layer.0.attention.self.query"] = 0.0123456789f,
            ["encoder.layer.0.intermediate.dense"] = 10f / 127f,
            ["pooler.dense"] = float.Epsilon,
            ["classifier"] = 3.4e38f,
        };
        var path = _dir.File("calib/minilm.calibration.json");
        CalibrationTable.Save(path, scales, CalibrationMode.Entropy);
        var (loaded, mode) = CalibrationTable.LoadWithMode(path);
        Assert.Equal(CalibrationMode.Entropy, mode);
        Assert.Equal(scales.OrderBy(p => p.Key, StringComparer.Ordinal), loaded);
        Assert.Equal(loaded, CalibrationTable.Load(path));
        Assert.Equal(new[] { "minilm.calibration.json" }, Directory.GetFiles(_dir.File("calib")).Select(Path.GetFileName));

        // Overwriting replaces the file whole.
        CalibrationTable.Save(path, new Dictionary<string, float> { ["x"] = 1f });
        var (again, noMode) = CalibrationTable.LoadWithMode(path);
        Assert.Null(noMode);
        Assert.Equal(new Dictionary<string, float> { ["x"] = 1f }, again);
    }

    [Theory]
    [InlineData("{\"format\": \"graphcompiler-calibration\", \"version\": 1, \"scales\": {\"a\": 0.1", "invalid JSON")]
    [InlineData("[1, 2]", "expected a JSON object")]
    [InlineData("{\"format\": \"onnx\", \"version\": 1, \"scales\": {}}", "\"format\" must be")]
    [InlineData("{\"format\": \"graphcompiler-calibration\", \"version\": 7, \"scales\": {}}", "unsupported \"version\"")]
    [InlineData("{\"format\": \"graphcompiler-calibration\", \"version\": 1}", "\"scales\" must be an object")]
    [InlineData("{\"format\": \"graphcompiler-calibration\", \"version\": 1, \"scales\": {\"a\": -0.5}}", "slot 'a' has scale -0.5")]
    [InlineData("{\"format\": \"graphcompiler-calibration\", \"version\": 1, \"scales\": {\"a\": \"0.5\"}}", "slot 'a' has scale \"0.5\"")]
    [InlineData("{\"format\": \"graphcompiler-calibration\", \"version\": 1, \"scales\": {\"a\": 1e300}}", "slot 'a' has scale 1e300")]
    [InlineData("{\"format\": \"graphcompiler-calibration\", \"version\": 1, \"scales\": {\"a\": 0.5, \"a\": 0.25}}", "slot 'a' appears twice")]
    [InlineData("{\"format\": \"graphcompiler-calibration\", \"version\": 1, \"mode\": \"kl\", \"scales\": {}}", "unknown calibration mode 'kl'")]
    public void ABadTableIsAnErrorNamingTheFile(string content, string problem)
    {
        var path = _dir.Write("bad.json", Encoding.UTF8.GetBytes(content));
        var e = Assert.Throws<InvalidDataException>(() => CalibrationTable.Load(path));
        Assert.StartsWith(path + ": ", e.Message, StringComparison.Ordinal);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingTableAndBadScalesAreErrors()
    {
        var missing = _dir.File("none.json");
        var e = Assert.Throws<FileNotFoundException>(() => CalibrationTable.Load(missing));
        Assert.Contains(missing, e.Message, StringComparison.Ordinal);
        var save = Assert.Throws<ArgumentException>(() => CalibrationTable.Save(_dir.File("t.json"), new Dictionary<string, float> { ["s"] = float.NaN }));
        Assert.Contains("slot 's' has scale NaN", save.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.File("t.json")));
    }
}
