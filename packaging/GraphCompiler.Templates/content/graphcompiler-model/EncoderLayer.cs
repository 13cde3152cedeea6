using GraphCompiler;
using static GraphCompiler.Ops;

namespace GraphCompilerModel;

/// <summary>A post-LN transformer encoder layer with BERT's parameter names: self-attention, residual + LayerNorm,
/// GELU feed-forward, residual + LayerNorm. The same hyper-parameters and names as GraphCompiler.Zoo's BertLayer.</summary>
[Block]
public partial class EncoderLayer
{
    [Hyper] public int Hidden;
    [Hyper] public int Heads;
    [Hyper] public int Ffn;
    [Hyper] public double Eps = 1e-12;
    [Hyper] public double DropoutP = 0.1;

    [Forward]
    public Expr Forward(Expr x, Expr mask)
    {
        var q = Linear(x, Hidden, Hidden, "attention.self.query");
        var k = Linear(x, Hidden, Hidden, "attention.self.key");
        var v = Linear(x, Hidden, Hidden, "attention.self.value");
        var context = Attention(q, k, v, mask, Heads, DropoutP);
        var attended = Dropout(Linear(context, Hidden, Hidden, "attention.output.dense"), DropoutP);
        var h = LayerNorm(x + attended, Hidden, Eps, "attention.output.LayerNorm");
        var up = Gelu(Linear(h, Hidden, Ffn, "intermediate.dense"));
        var down = Dropout(Linear(up, Ffn, Hidden, "output.dense"), DropoutP);
        return LayerNorm(h + down, Hidden, Eps, "output.LayerNorm");
    }
}
