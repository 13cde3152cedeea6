using Microsoft.Win32.SafeHandles;

namespace GraphCompiler.Runtime.Weights;

/// <summary>Checks and reads that every reader of weight files shares (safetensors here; ONNX initializers and MXNet
/// .params in GraphCompiler.Interop): shapes whose size overflows are refused, files are opened and read whole or not at
/// all, each failure a <see cref="WeightFileException"/> naming the file and the tensor.</summary>
public static class WeightFiles
{
    /// <summary>The element count; a shape whose strides overflow is refused too, even when a zero makes it empty
    /// (libtorch computes strides over max(dim, 1) and throws "Stride calculation overflowed").</summary>
    public static long Elements(string path, string name, long[] shape)
    {
        long count = 1, strides = 1;
        foreach (var d in shape)
        {
            try
            {
                count = checked(count * d);
                strides = checked(strides * Math.Max(d, 1));
            }
            catch (OverflowException)
            {
                throw new WeightFileException(path, $"tensor '{name}' has an impossible shape [{string.Join(",", shape)}]");
            }
        }

        return count;
    }

    /// <summary>Elements × element size, refused (not wrapped) when it does not fit in a long.</summary>
    public static long ByteCount(string path, string name, long[] shape, long count, int size)
    {
        try
        {
            return checked(count * size);
        }
        catch (OverflowException)
        {
            throw new WeightFileException(path, $"tensor '{name}' has an impossible shape [{string.Join(",", shape)}]: more than {long.MaxValue} bytes");
        }
    }

    /// <summary>Opens a weight file for random-access reads; an IO failure is a <see cref="WeightFileException"/>.</summary>
    public static SafeFileHandle OpenRead(string path)
    {
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new WeightFileException(path, "cannot open: " + ex.Message, ex);
        }
    }

    /// <summary>Fills <paramref name="into"/> from <paramref name="offset"/>; a short file is a <see cref="WeightFileException"/>
    /// naming the tensor.</summary>
    public static void ReadExactly(SafeFileHandle handle, Span<byte> into, long offset, string path, string name)
    {
        while (into.Length > 0)
        {
            var n = RandomAccess.Read(handle, into, offset);
            if (n <= 0)
            {
                throw new WeightFileException(path, $"truncated while reading tensor '{name}'");
            }

            into = into[n..];
            offset += n;
        }
    }
}
