using System.Text;
using Microsoft.Win32.SafeHandles;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Weights;

/// <summary>MXNet's NDArray list format (<c>.params</c>, as GluonNLP's model zoo ships): u64 magic 0x112, u64 reserved,
/// u64 count, the arrays (u32 magic 0xF993FAC9/0xF993FACA, i32 storage type, shape as i32 ndim + i64 dims, context as
/// two i32, i32 dtype flag, raw little-endian data), then u64 count and the names (u64 length + UTF-8 bytes).
/// Dense arrays only; every count and size is checked against what is left of the file before allocating.</summary>
public static class MxNetParams
{
    public const ulong ListMagic = 0x112;
    public const uint ArrayMagicV2 = 0xF993FAC9;
    public const uint ArrayMagicV3 = 0xF993FACA;

    private static readonly (ScalarType Type, int Size)?[] Flags =
    {
        (ScalarType.Float32, 4), (ScalarType.Float64, 8), (ScalarType.Float16, 2), (ScalarType.Byte, 1),
        (ScalarType.Int32, 4), (ScalarType.Int8, 1), (ScalarType.Int64, 8),
    };

    public static TensorSet Read(string path)
    {
        using var handle = WeightFiles.OpenRead(path);
        var reader = new Reader(handle, path);
        if (reader.Length < 24 || reader.U64("magic") != ListMagic)
        {
            throw new WeightFileException(path, "not an MXNet .params file (no NDArray list magic 0x112)");
        }

        reader.U64("reserved");
        var count = reader.Count("array count", minBytesEach: 16);
        var tensors = new List<Tensor>();
        try
        {
            for (long i = 0; i < count; i++)
            {
                tensors.Add(ReadArray(reader, i));
            }

            var names = reader.Count("name count", minBytesEach: 8);
            if (names != count)
            {
                throw new WeightFileException(path, $"has {count} arrays but {names} names");
            }

            var set = new TensorSet(path);
            try
            {
                for (var i = 0; i < count; i++)
                {
                    var length = reader.Count($"length of name {i}", minBytesEach: 1);
                    var name = Encoding.UTF8.GetString(reader.Bytes(length, $"name {i}"));
                    // Gluon prefixes names with "arg:"/"aux:" in symbol exports; the parameter name is what follows.
                    name = name.StartsWith("arg:", StringComparison.Ordinal) || name.StartsWith("aux:", StringComparison.Ordinal) ? name[4..] : name;
                    var tensor = tensors[i];
                    tensors[i] = null!; // the set owns it now (Add disposes it when it refuses it)
                    set.Add(name, tensor);
                }

                if (reader.Position != reader.Length)
                {
                    throw new WeightFileException(path, $"{reader.Length - reader.Position} unexpected bytes after the names");
                }

                return set;
            }
            catch
            {
                set.Dispose();
                throw;
            }
        }
        catch
        {
            foreach (var t in tensors.Where(t => t is not null))
            {
                t.Dispose();
            }

            throw;
        }
    }

    private static Tensor ReadArray(Reader reader, long index)
    {
        var magic = reader.U32($"array {index} magic");
        if (magic != ArrayMagicV2 && magic != ArrayMagicV3)
        {
            throw new WeightFileException(reader.Path, $"array {index}: magic 0x{magic:X8} is not an NDArray (0x{ArrayMagicV2:X8} or 0x{ArrayMagicV3:X8}); the MXNet 0.x format is not supported");
        }

        var storage = reader.I32($"array {index} storage type");
        if (storage != 0)
        {
            throw new WeightFileException(reader.Path, $"array {index} has storage type {storage}; only dense (0) arrays are supported");
        }

        var ndim = reader.I32($"array {index} ndim");
        if (ndim < 0 || ndim > 32)
        {
            throw new WeightFileException(reader.Path, $"array {index} has an invalid rank {ndim}");
        }

        var shape = new long[ndim];
        for (var d = 0; d < ndim; d++)
        {
            shape[d] = reader.I64($"array {index} dimension {d}");
            if (shape[d] < 0)
            {
                throw new WeightFileException(reader.Path, $"array {index} has a negative dimension {shape[d]}");
            }
        }

        reader.I32($"array {index} device type");
        reader.I32($"array {index} device id");
        var flag = reader.I32($"array {index} dtype");
        var kind = flag >= 0 && flag < Flags.Length ? Flags[flag] : null;
        if (kind is null)
        {
            throw new WeightFileException(reader.Path, $"array {index} has unknown dtype flag {flag}");
        }

        var elements = WeightFiles.Elements(reader.Path, $"array {index}", shape);
        var bytes = WeightFiles.ByteCount(reader.Path, $"array {index}", shape, elements, kind.Value.Size);
        if (bytes > reader.Length - reader.Position)
        {
            throw new WeightFileException(reader.Path, $"truncated: array {index} [{string.Join(",", shape)}] needs {bytes} bytes but {reader.Length - reader.Position} remain");
        }

        var tensor = empty(shape, kind.Value.Type);
        if (bytes > 0)
        {
            reader.ReadInto(tensor.bytes, $"array {index}");
        }

        return tensor;
    }

    /// <summary>Writes arrays in the same format (V2 magic, CPU context), atomically.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var items = tensors.ToList();
        AtomicFile.Write(path, stream =>
        {
            using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            w.Write(ListMagic);
            w.Write(0UL);
            w.Write((ulong)items.Count);
            foreach (var (name, tensor) in items)
            {
                using var cpu = tensor.detach().cpu().contiguous();
                var flag = Array.FindIndex(Flags, f => f?.Type == cpu.dtype);
                if (flag < 0)
                {
                    throw new ArgumentException($"tensor '{name}' has dtype {cpu.dtype}, which MXNet .params cannot store");
                }

                w.Write(ArrayMagicV2);
                w.Write(0);
                w.Write(cpu.shape.Length);
                foreach (var d in cpu.shape)
                {
                    w.Write(d);
                }

                w.Write(1); // cpu
                w.Write(0);
                w.Write(flag);
                if (cpu.numel() > 0)
                {
                    w.Write(cpu.bytes);
                }
            }

            w.Write((ulong)items.Count);
            foreach (var (name, _) in items)
            {
                var bytes = Encoding.UTF8.GetBytes(name);
                w.Write((ulong)bytes.Length);
                w.Write(bytes);
            }
        });
    }

    private sealed class Reader
    {
        private readonly SafeFileHandle _handle;

        public Reader(SafeFileHandle handle, string path)
        {
            _handle = handle;
            Path = path;
            Length = RandomAccess.GetLength(handle);
        }

        public string Path { get; }

        public long Length { get; }

        public long Position { get; private set; }

        public ulong U64(string what) => BitConverter.ToUInt64(Bytes(8, what));

        public long I64(string what) => BitConverter.ToInt64(Bytes(8, what));

        public uint U32(string what) => BitConverter.ToUInt32(Bytes(4, what));

        public int I32(string what) => BitConverter.ToInt32(Bytes(4, what));

        /// <summary>A count that must fit in what is left of the file, so a lying header cannot make us allocate.</summary>
        public long Count(string what, long minBytesEach)
        {
            var n = U64(what);
            if (n > (ulong)((Length - Position) / minBytesEach))
            {
                throw new WeightFileException(Path, $"truncated or corrupt: {what} is {n}, more than the {Length - Position} remaining bytes can hold");
            }

            return (long)n;
        }

        public byte[] Bytes(long count, string what)
        {
            if (count > Length - Position)
            {
                throw new WeightFileException(Path, $"truncated while reading {what} at byte {Position}");
            }

            var buffer = new byte[count];
            ReadInto(buffer, what);
            return buffer;
        }

        public void ReadInto(Span<byte> into, string what)
        {
            WeightFiles.ReadExactly(_handle, into, Position, Path, what);
            Position += into.Length;
        }
    }
}
