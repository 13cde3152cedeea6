using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GraphCompiler.Runtime;

/// <summary>The packed GEMMs' per-thread scratch: pinned arrays kept between calls and grown as needed.</summary>
internal static unsafe class PinnedBuffers
{
    /// <summary>A pinned, 64-byte aligned buffer of at least <paramref name="count"/> elements, grown as needed.</summary>
    public static T* Aligned<T>(ref T[]? buffer, long count)
        where T : unmanaged
    {
        var extra = 64 / sizeof(T);
        if (buffer is null || buffer.Length < count + extra)
        {
            buffer = GC.AllocateUninitializedArray<T>(checked((int)(count + extra)), pinned: true);
        }

        var address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        return (T*)((address + 63) & ~(nint)63);
    }
}
