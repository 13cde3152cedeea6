using System.Text.RegularExpressions;

namespace GraphCompiler.Runtime.Weights;

/// <summary>Maps parameter names of other toolkits onto the HF-style names the model declarations use.</summary>
public static partial class CheckpointNames
{
    /// <summary>The encoder layer a parameter belongs to ("encoder.layer.3.output.dense.weight" → 3, also under a prefix
    /// such as "bert."); −1 for the embeddings, the pooler, the heads.</summary>
    public static int EncoderLayer(string name) =>
        EncoderLayerPattern().Match(name) is { Success: true } m ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : -1;

    [GeneratedRegex(@"(?:^|\.)layer\.(\d+)\.")]
    private static partial Regex EncoderLayerPattern();

    private static readonly (Regex Pattern, string Replacement)[] GluonNlpRules =
    {
        (Rule(@"^word_embed\.0\.weight$"), "embeddings.word_embeddings.weight"),
        (Rule(@"^token_type_embed\.0\.weight$"), "embeddings.token_type_embeddings.weight"),
        (Rule(@"^encoder\.position_weight$"), "embeddings.position_embeddings.weight"),
        (Rule(@"^encoder\.layer_norm\.gamma$"), "embeddings.LayerNorm.weight"),
        (Rule(@"^encoder\.layer_norm\.beta$"), "embeddings.LayerNorm.bias"),
        (Rule(@"^encoder\.transformer_cells\.(\d+)\.attention_cell\.proj_(query|key|value)\.(weight|bias)$"), "encoder.layer.$1.attention.self.$2.$3"),
        (Rule(@"^encoder\.transformer_cells\.(\d+)\.proj\.(weight|bias)$"), "encoder.layer.$1.attention.output.dense.$2"),
        (Rule(@"^encoder\.transformer_cells\.(\d+)\.layer_norm\.gamma$"), "encoder.layer.$1.attention.output.LayerNorm.weight"),
        (Rule(@"^encoder\.transformer_cells\.(\d+)\.layer_norm\.beta$"), "encoder.layer.$1.attention.output.LayerNorm.bias"),
        (Rule(@"^encoder\.transformer_cells\.(\d+)\.ffn\.ffn_1\.(weight|bias)$"), "encoder.layer.$1.intermediate.dense.$2"),
        (Rule(@"^encoder\.transformer_cells\.(\d+)\.ffn\.ffn_2\.(weight|bias)$"), "encoder.layer.$1.output.dense.$2"),
        (Rule(@"^encoder\.transformer_cells\.(\d+)\.ffn\.layer_norm\.gamma$"), "encoder.layer.$1.output.LayerNorm.weight"),
        (Rule(@"^encoder\.transformer_cells\.(\d+)\.ffn\.layer_norm\.beta$"), "encoder.layer.$1.output.LayerNorm.bias"),
        (Rule(@"^pooler\.(weight|bias)$"), "pooler.dense.$1"),
        // BERTClassifier(bert, num_classes): Sequential(Dropout, Dense) after the pooled output.
        (Rule(@"^classifier\.1\.(weight|bias)$"), "classifier.$1"),
    };

    /// <summary>GluonNLP's <c>bert_12_768_12</c>/<c>BERTClassifier</c> parameter name → HF-style name; null for
    /// pre-training heads (<c>decoder.*</c>, the next-sentence <c>classifier.*</c>) and names it does not know.</summary>
    public static string? FromGluonNlp(string name)
    {
        if (name.StartsWith("bert.", StringComparison.Ordinal))
        {
            name = name["bert.".Length..];
        }

        foreach (var (pattern, replacement) in GluonNlpRules)
        {
            if (pattern.IsMatch(name))
            {
                return pattern.Replace(name, replacement);
            }
        }

        return null;
    }

    /// <summary>HF checkpoints of BertModel prefix everything with "bert."; BertForSequenceClassification also.</summary>
    public static string FromHuggingFace(string name) => name.StartsWith("bert.", StringComparison.Ordinal) ? name["bert.".Length..] : name;

    private static Regex Rule(string pattern) => new(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled);
}
