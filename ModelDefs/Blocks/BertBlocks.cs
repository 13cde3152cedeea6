using GraphCompiler;
using static GraphCompiler.Ops;

namespace GraphCompiler.ModelDefs;

/// <summary>Word + position + token-type embeddings, LayerNorm, dropout (HF names: <c>embeddings.*</c>).</summary>
[Block]
public partial class BertEmbeddings
{
    [Hyper] public int Vocab = 30522;
    [Hyper] public int MaxPositions = 512;
    [Hyper] public int TypeVocab = 2;
    [Hyper] public int Hidden;
    [Hyper] public double Eps = 1e-12;
    [Hyper] public double DropoutP = 0.1;

    [Forward]
    public Expr Forward(Expr inputIds, Expr tokenTypes)
    {
        var words = Embedding(inputIds, Vocab, Hidden, "word_embeddings");
        var positions = PositionEmbedding(inputIds, MaxPositions, Hidden, "position_embeddings");
        var types = Embedding(tokenTypes, TypeVocab, Hidden, "token_type_embeddings");
        return Dropout(LayerNorm(words + positions + types, Hidden, Eps, "LayerNorm"), DropoutP);
    }
}

/// <summary>The post-LN encoder layer: self-attention, residual + LayerNorm, GELU feed-forward, residual + LayerNorm
/// (HF names: <c>attention.self.query</c>, …, <c>output.LayerNorm</c>).</summary>
[Block]
public partial class BertLayer
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

/// <summary>Embeddings and N encoder layers; returns the sequence output [batch, seq, hidden].</summary>
[Block]
public partial class BertEncoder
{
    [Hyper] public int Layers;
    [Hyper] public int Hidden;
    [Hyper] public int Heads;
    [Hyper] public int Ffn;

    [Forward]
    public Expr Forward(Expr inputIds, Expr tokenTypes, Expr validLength)
    {
        var x = Apply("embeddings", new BertEmbeddings { Hidden = Hidden }, inputIds, tokenTypes);
        var mask = LengthMask(validLength, inputIds);
        return Repeat(Layers, "encoder.layer", new BertLayer { Hidden = Hidden, Heads = Heads, Ffn = Ffn }, x, mask);
    }
}

/// <summary>The pooler: first token → Dense → tanh (HF names: <c>pooler.dense</c>).</summary>
[Block]
public partial class BertPooler
{
    [Hyper] public int Hidden;

    [Forward]
    public Expr Forward(Expr sequence) => Tanh(Linear(Select(sequence, 1, 0), Hidden, Hidden, "dense"));
}

/// <summary>Mean pooling: the average of the valid tokens' vectors → Dense → tanh, with <see cref="BertPooler"/>'s parameter
/// names. all-MiniLM-L6-v2 was trained on mean-pooled embeddings; its first token was never a summary on its own.</summary>
[Block]
public partial class MeanPooler
{
    [Hyper] public int Hidden;

    [Forward]
    public Expr Forward(Expr sequence, Expr validLength)
    {
        // The softmax of the additive length mask is 1/length at valid positions and 0 at padding.
        var weights = Softmax(Reshape(LengthMask(validLength, sequence), Batch, 1, Seq));
        var mean = Reshape(MatMul(weights, sequence), Batch, Hidden);
        return Tanh(Linear(mean, Hidden, Hidden, "dense"));
    }
}

/// <summary>GluonNLP's BERTClassifier head: dropout, then Dense to the classes.</summary>
[Block]
public partial class ClassifierHead
{
    [Hyper] public int Hidden;
    [Hyper] public int Classes = 2;
    [Hyper] public double DropoutP = 0.1;

    [Forward]
    public Expr Forward(Expr pooled) => Linear(Dropout(pooled, DropoutP), Hidden, Classes, "classifier");
}

/// <summary>Regression head (e.g. STS-B): dropout, then Dense to one output.</summary>
[Block]
public partial class RegressionHead
{
    [Hyper] public int Hidden;
    [Hyper] public double DropoutP = 0.1;

    [Forward]
    public Expr Forward(Expr pooled) => Linear(Dropout(pooled, DropoutP), Hidden, 1, "regressor");
}
