using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime;

/// <summary>Raw addresses of CPU tensor data for the hand-written kernels.</summary>
internal static class TensorPointers
{
    /// <summary>The address of t's first element (0 for an empty tensor). Tensor.bytes refuses views that are not
    /// contiguous, so for those it is taken from a one-element view at the same storage offset, which is contiguous and
    /// starts at the same address.</summary>
    public static unsafe nint First(Tensor t)
    {
        if (t.numel() == 0 || t.is_contiguous())
        {
            return (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));
        }

        using var one = t.as_strided(new[] { 1L }, new[] { 1L }, t.storage_offset());
        return (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(one.bytes));
    }
}
