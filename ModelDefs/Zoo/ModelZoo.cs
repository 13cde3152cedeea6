using GraphCompiler.Runtime;
using GraphCompiler.Runtime.Text;
using GraphCompiler.Runtime.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.ModelDefs.Zoo;

/// <summary>A model from the zoo with the vocabulary it was trained with.</summary>
public sealed record ZooModel(nn.Module Module, Vocabulary Vocabulary, LoadReport? Load) : IDisposable
{
    public IGraphModule Graph => (IGraphModule)Module;

    public void Dispose() => Module.Dispose();
}

/// <summary><c>get_model</c> for the compiled BERT family: by name, optionally with pretrained weights.</summary>
public static class ModelZoo
{
    private static readonly Dictionary<string, Func<Device?, nn.Module>> Factories = new(StringComparer.Ordinal)
    {
        [Bert12ClassifierModule.Name] = d => new Bert12ClassifierModule(d),
        [Bert24ClassifierModule.Name] = d => new Bert24ClassifierModule(d),
        [MiniLmClassifierModule.Name] = d => new MiniLmClassifierModule(d),
        [MiniLmMeanPoolClassifierModule.Name] = d => new MiniLmMeanPoolClassifierModule(d),
        [MiniLmRegressorModule.Name] = d => new MiniLmRegressorModule(d),
        [MiniLmEncoderModule.Name] = d => new MiniLmEncoderModule(d),
    };

    public static IReadOnlyCollection<string> Names => Factories.Keys;

    /// <summary>Creates model <paramref name="name"/>. With <paramref name="pretrained"/>, loads <paramref name="weights"/>
    /// (.safetensors, GluonNLP .params, .onnx or a checkpoint of this project) or, for the MiniLM models, the embedded
    /// all-MiniLM-L6-v2 weights. Heads the checkpoint lacks (classifier, regressor) stay freshly initialised; any other
    /// missing, unexpected or mis-shaped tensor is an error.</summary>
    public static ZooModel GetModel(string name, bool pretrained = false, string? weights = null, string? vocab = null, Device? device = null)
    {
        if (!Factories.TryGetValue(name, out var factory))
        {
            throw new ArgumentException($"Unknown model '{name}'. Known: {string.Join(", ", Names.Order(StringComparer.Ordinal))}.", nameof(name));
        }

        var isMiniLm = name.StartsWith("minilm", StringComparison.Ordinal);
        if (pretrained && weights is null && !isMiniLm)
        {
            throw new ArgumentException($"Model '{name}' has no embedded pretrained weights; pass a checkpoint path (.safetensors, GluonNLP .params or .onnx).", nameof(weights));
        }

        var vocabulary = vocab is not null ? Vocabulary.FromFile(vocab) : new Vocabulary(MiniLmPackage.VocabResource, MiniLmPackage.Read(MiniLmPackage.VocabResource));
        var module = factory(device);
        try
        {
            LoadReport? report = null;
            if (pretrained)
            {
                using var tensors = weights is null ? OnnxWeights.Read(MiniLmPackage.Read(MiniLmPackage.ModelResource), MiniLmPackage.ModelResource) : ReadCheckpoint(weights);
                report = WeightLoader.Load(module, tensors, PretrainedOptions(weights));
            }

            return new ZooModel(module, vocabulary, report);
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    /// <summary>Re-initialises the pooler (if asked) and the top <paramref name="layers"/> encoder layers from their declared
    /// initializers: the pretrained pooler of a sentence-embedding checkpoint was never trained, and fresh top layers
    /// help fine-tuning on small data (Zhang et al., "Revisiting Few-sample BERT Fine-tuning", 2021). Returns the
    /// parameter names it drew afresh.</summary>
    public static IReadOnlyList<string> Reinitialize(ZooModel model, int layers, bool pooler)
    {
        var layerOf = model.Module.named_parameters().Select(p => p.name).ToDictionary(n => n, CheckpointNames.EncoderLayer);
        var count = layerOf.Values.DefaultIfEmpty(-1).Max() + 1;
        if (layers < 0 || layers > count)
        {
            throw new ArgumentException($"Model '{model.Graph.ModelName}' has {count} encoder layers; cannot re-initialise the top {layers}.", nameof(layers));
        }

        return ParameterInit.Reinitialize(model.Module, name =>
            (pooler && name.StartsWith("pooler.", StringComparison.Ordinal)) || layerOf[name] >= count - layers); // -1 (no layer) never is
    }

    /// <summary>Reads a weight file by its format (extension, then content for project checkpoints).</summary>
    public static TensorSet ReadCheckpoint(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".onnx" => OnnxWeights.Read(path),
        ".params" => MxNetParams.Read(path),
        ".safetensors" or ".ckpt" => SafeTensors.Read(path),
        var ext => throw new WeightFileException(path, $"unknown weight format '{ext}': expected .safetensors, .params (GluonNLP) or .onnx"),
    };

    /// <summary>Fine-tuning from a pre-trained encoder: the task head may be new; pre-training heads and buffers are
    /// dropped; GluonNLP and HF names are mapped onto ours.</summary>
    public static LoadOptions PretrainedOptions(string? weights) => new()
    {
        Rename = weights is not null && weights.EndsWith(".params", StringComparison.OrdinalIgnoreCase)
            ? CheckpointNames.FromGluonNlp
            : CheckpointNames.FromHuggingFace,
        AllowMissing = n => n.StartsWith("classifier.", StringComparison.Ordinal) || n.StartsWith("regressor.", StringComparison.Ordinal),
        IgnoreUnexpected = IsPretrainingExtra,
    };

    /// <summary>Buffers and pre-training heads (MLM decoder, next-sentence classifier), with or without a "bert." prefix.</summary>
    private static bool IsPretrainingExtra(string name)
    {
        var n = name.StartsWith("bert.", StringComparison.Ordinal) ? name["bert.".Length..] : name;
        return n.EndsWith("position_ids", StringComparison.Ordinal) || n.StartsWith("decoder.", StringComparison.Ordinal)
               || n.StartsWith("cls.", StringComparison.Ordinal) || n.StartsWith("classifier.", StringComparison.Ordinal);
    }
}
