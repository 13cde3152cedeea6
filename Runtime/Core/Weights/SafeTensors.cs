using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Weights;

/// <summary>The safetensors format (HF): u64 little-endian header length, a JSON header
/// <c>{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}</c>, then the raw little-endian data.
/// Reading streams each tensor straight into its storage; every size is checked against the file before allocating.</summary>
public static class SafeTensors
{
    /// <summary>Refuse headers above this size: real ones are kilobytes; a lying length must not allocate gigabytes.</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static readonly Dictionary<string, (ScalarType Type, int Size)> DTypes = new(StringComparer.Ordinal)
    {
        ["F64"] = (ScalarType.Float64, 8),
        ["F32"] = (ScalarType.Float32, 4),
        ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2),
        ["I64"] = (ScalarType.Int64, 8),
        ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2),
        ["I8"] = (ScalarType.Int8, 1),
        ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    public static TensorSet Read(string path)
    {
        using var handle = WeightFiles.OpenRead(path);
        var fileLength = RandomAccess.GetLength(handle);
        if (fileLength < 8)
        {
            throw new WeightFileException(path, $"not a safetensors file: {fileLength} bytes, shorter than the 8-byte header length");
        }

        Span<byte> lengthBytes = stackalloc byte[8];
        RandomAccess.Read(handle, lengthBytes, 0);
        var headerLength = BitConverter.ToUInt64(lengthBytes);
        if (headerLength > (ulong)(fileLength - 8) || headerLength > MaxHeaderBytes || headerLength < 2)
        {
            throw new WeightFileException(path, $"not a safetensors file, or truncated: header claims {headerLength} bytes but the file has {fileLength - 8} after the length");
        }

        var header = new byte[headerLength];
        WeightFiles.ReadExactly(handle, header, 8, path, "(header)");
        var dataStart = 8 + (long)headerLength;
        var dataLength = fileLength - dataStart;
        JsonDocument doc;
        try
        {
            // JsonDocument does not validate the UTF-8 of property names until they are read; check it all up front.
            StrictUtf8.GetCharCount(header);
            doc = JsonDocument.Parse(header);
        }
        catch (Exception ex) when (ex is JsonException or DecoderFallbackException)
        {
            throw new WeightFileException(path, "not a safetensors file: its header is not JSON (" + ex.Message + ")", ex);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new WeightFileException(path, "safetensors header must be a JSON object");
            }

            var set = new TensorSet(path);
            try
            {
                var ranges = new List<(long Begin, long End, string Name)>();
                foreach (var entry in doc.RootElement.EnumerateObject())
                {
                    if (entry.Name == "__metadata__")
                    {
                        if (entry.Value.ValueKind == JsonValueKind.Object)
                        {
                            foreach (var m in entry.Value.EnumerateObject())
                            {
                                set.Metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                            }
                        }

                        continue;
                    }

                    var (dtype, shape, begin, end) = Describe(path, entry);
                    var (type, size) = DTypes[dtype];
                    var count = WeightFiles.Elements(path, entry.Name, shape);
                    var bytes = WeightFiles.ByteCount(path, entry.Name, shape, count, size);
                    if (end - begin != bytes)
                    {
                        throw new WeightFileException(path, $"tensor '{entry.Name}': {dtype}[{string.Join(",", shape)}] needs {bytes} bytes but data_offsets span {end - begin}");
                    }

                    if (end > dataLength)
                    {
                        throw new WeightFileException(path, $"truncated: tensor '{entry.Name}' ends at byte {end} of the data section, which has {dataLength}");
                    }

                    if (end > begin)
                    {
                        ranges.Add((begin, end, entry.Name)); // empty tensors occupy no bytes and overlap nothing
                    }

                    var tensor = empty(shape, type);
                    set.Add(entry.Name, tensor);
                    if (count > 0)
                    {
                        WeightFiles.ReadExactly(handle, tensor.bytes, dataStart + begin, path, entry.Name);
                    }
                }

                ranges.Sort((a, b) => a.Begin.CompareTo(b.Begin));
                for (var i = 1; i < ranges.Count; i++)
                {
                    if (ranges[i].Begin < ranges[i - 1].End)
                    {
                        throw new WeightFileException(path, $"tensors '{ranges[i - 1].Name}' and '{ranges[i].Name}' overlap in the data section");
                    }
                }

                return set;
            }
            catch
            {
                set.Dispose();
                throw;
            }
        }
    }

    private static (string DType, long[] Shape, long Begin, long End) Describe(string path, JsonProperty entry)
    {
        var v = entry.Value;
        if (v.ValueKind != JsonValueKind.Object
            || !v.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String
            || !v.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array
            || !v.TryGetProperty("data_offsets", out var offsetsEl) || offsetsEl.ValueKind != JsonValueKind.Array || offsetsEl.GetArrayLength() != 2)
        {
            throw new WeightFileException(path, $"tensor '{entry.Name}' needs dtype, shape and data_offsets [begin, end]");
        }

        var dtype = dtypeEl.GetString()!;
        if (!DTypes.ContainsKey(dtype))
        {
            throw new WeightFileException(path, $"tensor '{entry.Name}' has unsupported dtype '{dtype}' (supported: {string.Join(", ", DTypes.Keys)})");
        }

        var shape = new List<long>();
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var n) || n < 0)
            {
                throw new WeightFileException(path, $"tensor '{entry.Name}' has an invalid dimension {d.GetRawText()}");
            }

            shape.Add(n);
        }

        var offsets = offsetsEl.EnumerateArray().Select(o => o.ValueKind == JsonValueKind.Number && o.TryGetInt64(out var x) ? x : -1).ToArray();
        if (offsets[0] < 0 || offsets[1] < offsets[0])
        {
            throw new WeightFileException(path, $"tensor '{entry.Name}' has invalid data_offsets [{offsets[0]}, {offsets[1]}]");
        }

        return (dtype, shape.ToArray(), offsets[0], offsets[1]);
    }

    /// <summary>Writes tensors (names sorted, data 8-byte aligned) to a temporary file beside <paramref name="path"/>
    /// and renames it into place, so a crash never leaves a half-written file under the real name.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var items = tensors.OrderBy(t => t.Key, StringComparer.Ordinal).ToList();
        // A JsonObject rather than reflection serialization: native AOT applications write weights too (IL2026/IL3050).
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var entries = new JsonObject();
            foreach (var (key, value) in metadata)
            {
                entries[key] = value;
            }

            header["__metadata__"] = entries;
        }

        long offset = 0;
        var contiguous = new List<Tensor>();
        try
        {
            foreach (var (name, tensor) in items)
            {
                var cpu = tensor.detach().cpu().contiguous();
                contiguous.Add(cpu);
                var dtype = DTypes.FirstOrDefault(d => d.Value.Type == cpu.dtype).Key
                    ?? throw new ArgumentException($"tensor '{name}' has dtype {cpu.dtype}, which safetensors cannot store");
                var bytes = cpu.numel() * DTypes[dtype].Size;
                header[name] = new JsonObject
                {
                    ["dtype"] = dtype,
                    ["shape"] = new JsonArray(cpu.shape.Select(d => (JsonNode?)d).ToArray()),
                    ["data_offsets"] = new JsonArray(offset, offset + bytes),
                };
                offset += bytes;
            }

            var json = Encoding.UTF8.GetBytes(header.ToJsonString());
            var padded = (json.Length + 7) / 8 * 8;
            var headerBytes = new byte[padded];
            Array.Fill(headerBytes, (byte)' ');
            json.CopyTo(headerBytes, 0);
            AtomicFile.Write(path, stream =>
            {
                stream.Write(BitConverter.GetBytes((ulong)padded));
                stream.Write(headerBytes);
                foreach (var t in contiguous)
                {
                    if (t.numel() > 0)
                    {
                        stream.Write(t.bytes);
                    }
                }
            });
        }
        finally
        {
            foreach (var t in contiguous)
            {
                t.Dispose();
            }
        }
    }
}
