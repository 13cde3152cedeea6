using System.Text;
using GraphCompiler.Generator.Emit;
using GraphCompiler.Runtime;
using Xunit;

namespace GraphCompiler.Tests.Runtime;

/// <summary>The generator packs each IR text it embeds (TextPacker); the runtime unpacks it (PackedText): the two must
/// round-trip every text exactly, and the IR, a stack of near-identical layers, must shrink.</summary>
public sealed class PackedTextTests
{
    private static string RoundTrip(string text) => PackedText.Unpack(Encoding.ASCII.GetBytes(TextPacker.Pack(text)));

    [Theory]
    [InlineData("")]
    [InlineData("a")]
    [InlineData("abcabcabcabcabcabcabcabcabcabcabcabc")] // a match overlapping the bytes it writes
    [InlineData("%4 = add(%1, %2) : f32[batch,seq,384] → ∂loss/∂x  # layer @ File.cs:12")]
    public void SmallTextsRoundTrip(string text) => Assert.Equal(text, RoundTrip(text));

    [Fact]
    public void RandomTextsRoundTrip()
    {
        // Few distinct characters make many short and long matches at every distance; lengths cross the literal-run
        // (128) and match-length (131) limits.
        var random = new Random(19);
        foreach (var length in new[] { 3, 4, 5, 127, 128, 129, 131, 132, 1000, 70_000 })
        {
            var chars = new char[length];
            for (var i = 0; i < length; i++)
            {
                chars[i] = "ab→c d\n"[random.Next(7)];
            }

            var text = new string(chars);
            Assert.Equal(text, RoundTrip(text));
        }
    }

    [Fact]
    public void ModelIrRoundTripsAndShrinks()
    {
        var ir = GraphCompiler.ModelDefs.Bert12ClassifierModule.IrText(IrStage.Backward);
        var packed = TextPacker.Pack(ir);
        Assert.Equal(ir, PackedText.Unpack(Encoding.ASCII.GetBytes(packed)));
        Assert.True(packed.Length * 4 < ir.Length, $"the 12-layer backward IR packed to {packed.Length} base64 characters from {ir.Length}");
    }

    [Fact]
    public void AMatchBeforeTheStartIsRefused()
    {
        // A match token (length 4) reaching 5 bytes back after only 1 literal byte.
        var bad = Convert.ToBase64String(new byte[] { 0x00, (byte)'x', 0x80, 0x05 });
        Assert.Throws<FormatException>(() => PackedText.Unpack(Encoding.ASCII.GetBytes(bad)));
    }
}
