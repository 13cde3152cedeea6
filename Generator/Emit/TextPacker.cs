using System;
using System.Collections.Generic;
using System.Text;

namespace GraphCompiler.Generator.Emit
{
    /// <summary>Packs a long text (a model's IR at each stage, thousands of near-identical layer lines) into base64 of a
    /// small LZ77 stream that <c>GraphCompiler.Runtime.PackedText.Unpack</c> reverses. Hand-rolled rather than Deflate so
    /// that the generated source is byte-identical on every machine, whatever zlib the compiler's runtime carries.
    /// Format, after base64: a sequence of tokens; a control byte c &lt; 0x80 is followed by c + 1 literal bytes; a control
    /// byte c ≥ 0x80 copies (c &amp; 0x7F) + <see cref="MinMatch"/> bytes from a distance that follows as an unsigned LEB128.</summary>
    public static class TextPacker
    {
        public const int MinMatch = 4;

        private const int MaxMatch = 0x7F + MinMatch;

        private const int MaxLiterals = 0x80;

        private const int HashBits = 16;

        // How many earlier positions with the same 4-byte hash are tried: a layer's line matches the same line one layer
        // back, past many nearer look-alikes.
        private const int ChainDepth = 24;

        public static string Pack(string text)
        {
            var input = Encoding.UTF8.GetBytes(text);
            var output = new List<byte>(input.Length / 4 + 16);
            var head = new int[1 << HashBits];
            for (var i = 0; i < head.Length; i++)
            {
                head[i] = -1;
            }

            var previous = new int[input.Length];
            var literalStart = 0;
            var pos = 0;
            while (pos < input.Length)
            {
                var (length, distance) = pos + MinMatch <= input.Length ? LongestMatch(input, pos, head, previous) : (0, 0);
                if (length < MinMatch)
                {
                    Insert(input, pos, head, previous);
                    pos++;
                    continue;
                }

                FlushLiterals(input, literalStart, pos, output);
                output.Add((byte)(0x80 | (length - MinMatch)));
                for (var d = (uint)distance; ; d >>= 7)
                {
                    if (d < 0x80)
                    {
                        output.Add((byte)d);
                        break;
                    }

                    output.Add((byte)(0x80 | (d & 0x7F)));
                }

                for (var end = pos + length; pos < end; pos++)
                {
                    Insert(input, pos, head, previous);
                }

                literalStart = pos;
            }

            FlushLiterals(input, literalStart, input.Length, output);
            return Convert.ToBase64String(output.ToArray());
        }

        private static int Hash(byte[] input, int pos) =>
            (int)(((uint)(input[pos] | input[pos + 1] << 8 | input[pos + 2] << 16 | input[pos + 3] << 24) * 2654435761u) >> (32 - HashBits));

        private static void Insert(byte[] input, int pos, int[] head, int[] previous)
        {
            if (pos + MinMatch > input.Length)
            {
                return;
            }

            var h = Hash(input, pos);
            previous[pos] = head[h];
            head[h] = pos;
        }

        private static (int Length, int Distance) LongestMatch(byte[] input, int pos, int[] head, int[] previous)
        {
            var best = 0;
            var bestDistance = 0;
            var limit = Math.Min(MaxMatch, input.Length - pos);
            var candidate = head[Hash(input, pos)];
            for (var tries = 0; candidate >= 0 && tries < ChainDepth; tries++, candidate = previous[candidate])
            {
                var length = 0;
                while (length < limit && input[candidate + length] == input[pos + length])
                {
                    length++;
                }

                if (length > best)
                {
                    best = length;
                    bestDistance = pos - candidate;
                    if (length == limit)
                    {
                        break;
                    }
                }
            }

            return (best, bestDistance);
        }

        private static void FlushLiterals(byte[] input, int start, int end, List<byte> output)
        {
            while (start < end)
            {
                var count = Math.Min(MaxLiterals, end - start);
                output.Add((byte)(count - 1));
                for (var i = 0; i < count; i++)
                {
                    output.Add(input[start + i]);
                }

                start += count;
            }
        }
    }
}
