using System.Text;

namespace GraphCompiler.Runtime;

/// <summary>Unpacks the texts a generated module carries packed (its IR at each stage): base64 of the LZ77 stream that
/// the generator's <c>TextPacker</c> writes (a control byte c &lt; 0x80 is followed by c + 1 literal bytes; c ≥ 0x80 copies
/// (c &amp; 0x7F) + 4 bytes from a distance that follows as an unsigned LEB128), decoded as UTF-8.</summary>
public static class PackedText
{
    private const int MinMatch = 4;

    public static string Unpack(ReadOnlySpan<byte> base64Utf8)
    {
        var packed = Convert.FromBase64String(Encoding.ASCII.GetString(base64Utf8));
        var output = new List<byte>(packed.Length * 4);
        var pos = 0;
        while (pos < packed.Length)
        {
            var control = packed[pos++];
            if (control < 0x80)
            {
                var count = control + 1;
                if (pos + count > packed.Length)
                {
                    throw new FormatException("packed text: a literal run passes the end");
                }

                output.AddRange(new ArraySegment<byte>(packed, pos, count));
                pos += count;
                continue;
            }

            var length = (control & 0x7F) + MinMatch;
            var distance = 0;
            for (var shift = 0; ; shift += 7)
            {
                if (pos >= packed.Length || shift > 28)
                {
                    throw new FormatException("packed text: a match distance is cut off");
                }

                var b = packed[pos++];
                distance |= (b & 0x7F) << shift;
                if (b < 0x80)
                {
                    break;
                }
            }

            if (distance <= 0 || distance > output.Count)
            {
                throw new FormatException($"packed text: a match reaches {distance} bytes back, before the start");
            }

            // Byte by byte: a match may overlap the bytes it produces.
            for (var i = 0; i < length; i++)
            {
                output.Add(output[output.Count - distance]);
            }
        }

        return Encoding.UTF8.GetString(output.ToArray());
    }
}
