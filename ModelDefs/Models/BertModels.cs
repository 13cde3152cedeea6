using GraphCompiler;
using static GraphCompiler.Ops;

namespace GraphCompiler.ModelDefs;

// The configurations: vocabulary 30,522, 512 positions, 2 token types, LayerNorm eps 1e-12 (BertEmbeddings defaults).
// Static shapes: batch 32 (the tutorial's) at sequence lengths 32, 64 and 128 (its max_len); the MiniLM classifier, which
// the MRPC sample trains, has finer steps so that fewer token slots are padding.
// Inputs: token ids, token types (segment ids) and valid lengths, as GluonNLP's BERTDatasetTransform produces them.
// [Quantize]: the classifiers and the regressor also get an int8 variant ({Class}Int8Module); the encoder's GEMMs run in
// int8, the pooler and the head (batch rows only) stay fp32.
// The three pair classifiers are configuration-only models of BertClassifier: they set its hyper-parameters in their
// constructors and declare their own buckets. The mean-pooling, regression and encoder-only models keep their own
// Forward: they differ in which blocks they apply, which the Forward language says more plainly than a switch hyper.

/// <summary>The encoder → pooler → pair classifier body the BERT classifiers share; a base for configuration-only models
/// (abstract: not compiled itself). Its hyper-parameters default to BERT-base with two labels.</summary>
[Model("bert_classifier")]
public abstract partial class BertClassifier
{
    [Hyper] public int Layers = 12;
    [Hyper] public int Hidden = 768;
    [Hyper] public int Heads = 12;
    [Hyper] public int Ffn = 3072;
    [Hyper] public int Classes = 2;

    [Forward]
    public Expr Forward(
        [Input(DType.Int64, "batch", "seq")] Expr inputIds,
        [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var sequence = Apply("", new BertEncoder { Layers = Layers, Hidden = Hidden, Heads = Heads, Ffn = Ffn }, inputIds, tokenTypes, validLength);
        var pooled = Apply("pooler", new BertPooler { Hidden = Hidden }, sequence);
        return Apply("", new ClassifierHead { Hidden = Hidden, Classes = Classes }, pooled);
    }
}

/// <summary>BERT-base (12 layers, 768 hidden, 12 heads, 3072 FFN) with the pair classifier.</summary>
[Model("bert_12_768_12")]
[Quantize]
[StaticShapes(Batch = 32, SeqLens = new[] { 32, 64, 128 })]
[StaticShapes(Batch = 1, SeqLens = new[] { 128 })] // serving: one request at a time
public partial class Bert12Classifier : BertClassifier
{
}

/// <summary>BERT-large (24 layers, 1024 hidden, 16 heads, 4096 FFN) with the pair classifier.</summary>
[Model("bert_24_1024_16")]
[Quantize]
[StaticShapes(Batch = 32, SeqLens = new[] { 32, 64, 128 })]
public partial class Bert24Classifier : BertClassifier
{
    public Bert24Classifier()
    {
        Layers = 24;
        Hidden = 1024;
        Heads = 16;
        Ffn = 4096;
    }
}

/// <summary>The all-MiniLM-L6-v2 shape (6 layers, 384 hidden, 12 heads, 1536 FFN) with the pair classifier.</summary>
[Model("minilm")]
[Quantize]
[StaticShapes(Batch = 32, SeqLens = new[] { 32, 48, 64, 80, 96, 128 })] // MRPC's pairs: 30 % padding at 32/64/128, 13.5 % here
// Serving (predict serve batches concurrent requests into the cheapest bucket that holds them): one request alone, and
// the few that arrive together under moderate load, without paying for 32 rows or 128 tokens.
[StaticShapes(Batch = 1, SeqLens = new[] { 32, 64, 128 })]
[StaticShapes(Batch = 4, SeqLens = new[] { 32, 64, 128 })]
[StaticShapes(Batch = 8, SeqLens = new[] { 32, 64, 128 })]
[StaticShapes(Batch = 16, SeqLens = new[] { 32, 64, 128 })]
public partial class MiniLmClassifier : BertClassifier
{
    public MiniLmClassifier()
    {
        Layers = 6;
        Hidden = 384;
        Heads = 12;
        Ffn = 1536;
    }
}

/// <summary>The MiniLM classifier pooling as its checkpoint was trained: the mean of the valid tokens, not the first.</summary>
[Model("minilm_meanpool")]
[Quantize]
[StaticShapes(Batch = 32, SeqLens = new[] { 32, 48, 64, 80, 96, 128 })]
[StaticShapes(Batch = 1, SeqLens = new[] { 128 })]
public partial class MiniLmMeanPoolClassifier
{
    [Hyper] public int Classes = 2;

    [Forward]
    public Expr Forward(
        [Input(DType.Int64, "batch", "seq")] Expr inputIds,
        [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var sequence = Apply("", new BertEncoder { Layers = 6, Hidden = 384, Heads = 12, Ffn = 1536 }, inputIds, tokenTypes, validLength);
        var pooled = Apply("pooler", new MeanPooler { Hidden = 384 }, sequence, validLength);
        return Apply("", new ClassifierHead { Hidden = 384, Classes = Classes }, pooled);
    }
}

/// <summary>MiniLM with the regression head (one output per pair).</summary>
[Model("minilm_regression")]
[Quantize]
[StaticShapes(Batch = 32, SeqLens = new[] { 32, 64, 128 })]
public partial class MiniLmRegressor
{
    [Forward]
    public Expr Forward(
        [Input(DType.Int64, "batch", "seq")] Expr inputIds,
        [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var sequence = Apply("", new BertEncoder { Layers = 6, Hidden = 384, Heads = 12, Ffn = 1536 }, inputIds, tokenTypes, validLength);
        var pooled = Apply("pooler", new BertPooler { Hidden = 384 }, sequence);
        return Apply("", new RegressionHead { Hidden = 384 }, pooled);
    }
}

/// <summary>The MiniLM encoder itself, as the ONNX model ships it: (last_hidden_state, pooled output).</summary>
[Model("minilm_encoder")]
[StaticShapes(Batch = 32, SeqLens = new[] { 32, 64, 128 })]
public partial class MiniLmEncoder
{
    [Forward]
    public (Expr Sequence, Expr Pooled) Forward(
        [Input(DType.Int64, "batch", "seq")] Expr inputIds,
        [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
        [Input(DType.Int64, "batch")] Expr validLength)
    {
        var sequence = Apply("", new BertEncoder { Layers = 6, Hidden = 384, Heads = 12, Ffn = 1536 }, inputIds, tokenTypes, validLength);
        var pooled = Apply("pooler", new BertPooler { Hidden = 384 }, sequence);
        return (sequence, pooled);
    }
}
