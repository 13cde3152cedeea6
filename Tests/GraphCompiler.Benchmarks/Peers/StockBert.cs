using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraphCompiler.Benchmarks.Peers;

/// <summary>BERT assembled the way a .NET user would without the compiler: TorchSharp's stock nn.Embedding,
/// nn.LayerNorm, nn.TransformerEncoderLayer (GELU, post-LN) and nn.Linear. The reference (and, in benchmarks, the
/// peer) for the generated models. Note: the stock encoder layer's LayerNorms use eps 1e-5 (not configurable), BERT's 1e-12.</summary>
public sealed class StockBert : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly Embedding word;
    private readonly Embedding position;
    private readonly Embedding tokenType;
    private readonly LayerNorm embeddingNorm;
    private readonly Dropout dropout;
    private readonly ModuleList<TransformerEncoderLayer> layers;
    private readonly Linear pooler;
    private readonly Linear classifier;

    public StockBert(int layerCount, int hidden, int heads, int ffn, int vocab = 30522, int maxPositions = 512, int classes = 2)
        : base("stock_bert")
    {
        word = nn.Embedding(vocab, hidden);
        position = nn.Embedding(maxPositions, hidden);
        tokenType = nn.Embedding(2, hidden);
        embeddingNorm = nn.LayerNorm(hidden, 1e-12);
        dropout = nn.Dropout(0.1);
        layers = new ModuleList<TransformerEncoderLayer>(Enumerable.Range(0, layerCount)
            .Select(_ => nn.TransformerEncoderLayer(hidden, heads, ffn, 0.1, nn.Activations.GELU)).ToArray());
        pooler = nn.Linear(hidden, hidden);
        classifier = nn.Linear(hidden, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor inputIds, Tensor tokenTypes, Tensor validLength)
    {
        using var scope = NewDisposeScope();
        var seq = inputIds.shape[1];
        var positions = arange(seq, device: inputIds.device);
        var x = embeddingNorm.call(word.call(inputIds) + position.call(positions) + tokenType.call(tokenTypes));
        x = dropout.call(x).transpose(0, 1); // the stock layer is [seq, batch, hidden]
        var padding = positions.unsqueeze(0).ge(validLength.unsqueeze(1));
        foreach (var layer in layers)
        {
            x = layer.call(x, null!, padding);
        }

        var first = x.select(0, 0);
        var pooled = tanh(pooler.call(first));
        return classifier.call(dropout.call(pooled)).MoveToOuterDisposeScope();
    }

    /// <summary>Copies weights given under the HF-style names (what the generated models use).</summary>
    public void LoadFrom(IReadOnlyDictionary<string, Tensor> weights)
    {
        using var _ = no_grad();
        void Copy(Tensor target, string name) => target.copy_(weights[name]);
        Copy(word.weight!, "embeddings.word_embeddings.weight");
        Copy(position.weight!, "embeddings.position_embeddings.weight");
        Copy(tokenType.weight!, "embeddings.token_type_embeddings.weight");
        Copy(embeddingNorm.weight!, "embeddings.LayerNorm.weight");
        Copy(embeddingNorm.bias!, "embeddings.LayerNorm.bias");
        for (var i = 0; i < layers.Count; i++)
        {
            var p = $"encoder.layer.{i}.";
            var parameters = layers[i].named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
            using var inWeight = cat(new[] { weights[p + "attention.self.query.weight"], weights[p + "attention.self.key.weight"], weights[p + "attention.self.value.weight"] }, 0);
            using var inBias = cat(new[] { weights[p + "attention.self.query.bias"], weights[p + "attention.self.key.bias"], weights[p + "attention.self.value.bias"] }, 0);
            parameters["self_attn.in_proj_weight"].copy_(inWeight);
            parameters["self_attn.in_proj_bias"].copy_(inBias);
            Copy(parameters["self_attn.out_proj.weight"], p + "attention.output.dense.weight");
            Copy(parameters["self_attn.out_proj.bias"], p + "attention.output.dense.bias");
            Copy(parameters["norm1.weight"], p + "attention.output.LayerNorm.weight");
            Copy(parameters["norm1.bias"], p + "attention.output.LayerNorm.bias");
            Copy(parameters["linear1.weight"], p + "intermediate.dense.weight");
            Copy(parameters["linear1.bias"], p + "intermediate.dense.bias");
            Copy(parameters["linear2.weight"], p + "output.dense.weight");
            Copy(parameters["linear2.bias"], p + "output.dense.bias");
            Copy(parameters["norm2.weight"], p + "output.LayerNorm.weight");
            Copy(parameters["norm2.bias"], p + "output.LayerNorm.bias");
        }

        Copy(pooler.weight!, "pooler.dense.weight");
        Copy(pooler.bias!, "pooler.dense.bias");
        Copy(classifier.weight!, "classifier.weight");
        Copy(classifier.bias!, "classifier.bias");
    }
}
