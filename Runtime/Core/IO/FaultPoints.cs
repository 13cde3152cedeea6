namespace GraphCompiler.Runtime.IO;

/// <summary>Fault injection for the kill tests (issue 21): with <c>GRAPHCOMPILER_FAULT_AT</c> set, the process stops at
/// the named point, prints <c>fault point reached: …</c> on standard error and sleeps until it is killed, so a test can
/// SIGKILL it at a known place. Points: <c>step:N</c> (after optimizer step N's update, before anything records it) and
/// <c>write:TEXT</c> (a file written through <see cref="Weights.AtomicFile"/> whose final path contains TEXT, once its
/// first 64 KiB are in its temporary file); <c>#K</c> at the end picks the K-th time the point is reached (default 1).
/// Unset, as everywhere outside those tests, every point is a null check.</summary>
public static class FaultPoints
{
    public const string Variable = "GRAPHCOMPILER_FAULT_AT";

    /// <summary>Bytes of a watched file written before it holds.</summary>
    public const int WriteThreshold = 64 * 1024;

    private static readonly (string Kind, string Argument, int Occurrence)? Armed = Parse(Environment.GetEnvironmentVariable(Variable));
    private static int _seen;

    /// <summary>Called after optimizer step <paramref name="step"/> (1-based) has updated the parameters.</summary>
    public static void AfterStep(int step)
    {
        if (Armed is ("step", var n, _) && n == step.ToString(System.Globalization.CultureInfo.InvariantCulture) && Count())
        {
            Hold($"step:{step}");
        }
    }

    /// <summary>The stream a file's bytes go through: <paramref name="stream"/> itself, or a wrapper that holds midway
    /// when a <c>write:</c> point names <paramref name="finalPath"/>.</summary>
    public static Stream WatchWrite(Stream stream, string finalPath)
    {
        if (Armed is ("write", var text, _) && finalPath.Replace('\\', '/').Contains(text, StringComparison.Ordinal) && Count())
        {
            return new HoldingStream(stream, $"write:{text} ({finalPath})");
        }

        return stream;
    }

    private static bool Count() => Interlocked.Increment(ref _seen) == Armed!.Value.Occurrence;

    private static void Hold(string where)
    {
        Console.Error.WriteLine($"fault point reached: {where} ({Variable}); waiting to be killed");
        Console.Error.Flush();
        Thread.Sleep(Timeout.Infinite);
    }

    private static (string, string, int)? Parse(string? spec)
    {
        if (string.IsNullOrEmpty(spec))
        {
            return null;
        }

        var occurrence = 1;
        var hash = spec.LastIndexOf('#');
        if (hash > 0)
        {
            occurrence = int.Parse(spec.AsSpan(hash + 1), System.Globalization.CultureInfo.InvariantCulture);
            spec = spec[..hash];
        }

        var colon = spec.IndexOf(':');
        if (colon <= 0 || spec[..colon] is not ("step" or "write"))
        {
            throw new ArgumentException($"{Variable}='{spec}': expected step:N or write:TEXT, optionally followed by #K");
        }

        return (spec[..colon], spec[(colon + 1)..], occurrence);
    }

    /// <summary>Passes writes through; once the threshold is crossed, pushes what it has to the file and holds.</summary>
    private sealed class HoldingStream(Stream inner, string where) : Stream
    {
        private long _written;

        public override bool CanRead => false;

        public override bool CanSeek => inner.CanSeek;

        public override bool CanWrite => true;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => inner.Position = value; }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            _written += buffer.Length;
            if (_written >= WriteThreshold)
            {
                inner.Flush();
                Hold(where);
            }
        }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

        public override void SetLength(long value) => inner.SetLength(value);
    }
}
