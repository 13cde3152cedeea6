using System.Text.Json;
using GraphCompiler.Runtime.Weights;

namespace GraphCompiler.Runtime.Quantization;

/// <summary>Per-slot activation scales as a JSON file:
/// <c>{"format": "graphcompiler-calibration", "version": 1, "mode": "entropy", "scales": {"slot": 0.0123, …}}</c>.
/// Written atomically (temporary sibling + rename); reading checks every field and names the file in each error.</summary>
public static class CalibrationTable
{
    public const string Format = "graphcompiler-calibration";
    public const int Version = 1;

    public static void Save(string path, IReadOnlyDictionary<string, float> scales, CalibrationMode? mode = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(scales);
        foreach (var (slot, scale) in scales)
        {
            if (!IsValidScale(scale))
            {
                throw new ArgumentException($"{path}: slot '{slot}' has scale {scale}; a scale must be finite and > 0", nameof(scales));
            }
        }

        AtomicFile.Write(path, stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            json.WriteStartObject();
            json.WriteString("format", Format);
            json.WriteNumber("version", Version);
            if (mode is { } m)
            {
                json.WriteString("mode", m.ToString().ToLowerInvariant());
            }

            json.WriteStartObject("scales");
            foreach (var (slot, scale) in scales.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                json.WriteNumber(slot, scale);
            }

            json.WriteEndObject();
            json.WriteEndObject();
        });
    }

    public static IReadOnlyDictionary<string, float> Load(string path) => LoadWithMode(path).Scales;

    /// <summary>The scales and the mode that produced them (null when the file does not say).</summary>
    public static (IReadOnlyDictionary<string, float> Scales, CalibrationMode? Mode) LoadWithMode(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path}: calibration table not found", path);
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a calibration table: invalid JSON ({e.Message})", e);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Bad(path, $"expected a JSON object, found {root.ValueKind}");
            }

            if (!root.TryGetProperty("format", out var format) || format.ValueKind != JsonValueKind.String || format.GetString() != Format)
            {
                throw Bad(path, $"\"format\" must be \"{Format}\"");
            }

            if (!root.TryGetProperty("version", out var version) || !version.TryGetInt32(out var v) || v != Version)
            {
                throw Bad(path, $"unsupported \"version\" (this build reads version {Version})");
            }

            CalibrationMode? mode = null;
            if (root.TryGetProperty("mode", out var modeElement))
            {
                try
                {
                    mode = CalibrationCollectors.ParseMode(modeElement.ValueKind == JsonValueKind.String ? modeElement.GetString()! : modeElement.ToString());
                }
                catch (ArgumentException e)
                {
                    throw Bad(path, e.Message);
                }
            }

            if (!root.TryGetProperty("scales", out var scalesElement) || scalesElement.ValueKind != JsonValueKind.Object)
            {
                throw Bad(path, "\"scales\" must be an object of slot → scale");
            }

            var scales = new SortedDictionary<string, float>(StringComparer.Ordinal);
            foreach (var slot in scalesElement.EnumerateObject())
            {
                if (slot.Value.ValueKind != JsonValueKind.Number || !slot.Value.TryGetSingle(out var scale) || !IsValidScale(scale))
                {
                    throw Bad(path, $"slot '{slot.Name}' has scale {slot.Value.GetRawText()}; a scale must be a finite number > 0");
                }

                if (!scales.TryAdd(slot.Name, scale))
                {
                    throw Bad(path, $"slot '{slot.Name}' appears twice");
                }
            }

            return (scales, mode);
        }
    }

    private static bool IsValidScale(float scale) => float.IsFinite(scale) && scale > 0;

    private static InvalidDataException Bad(string path, string problem) => new($"{path}: not a valid calibration table: {problem}");
}
