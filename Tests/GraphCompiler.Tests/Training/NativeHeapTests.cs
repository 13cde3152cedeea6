using GraphCompiler.Runtime;
using Xunit;

namespace GraphCompiler.Tests.Training;

/// <summary>The trainer's malloc settings reach glibc on the Linux machines this project runs on.</summary>
public sealed class NativeHeapTests
{
    [Fact]
    public void GlibcTakesTheSettings()
    {
        Assert.True(OperatingSystem.IsLinux(), "CI runs on Debian");
        Assert.True(NativeHeap.KeepFreedMemory(), "mallopt refused the settings");
        Assert.True(NativeHeap.KeepFreedMemory(), "a second call reports the first result");
    }
}
