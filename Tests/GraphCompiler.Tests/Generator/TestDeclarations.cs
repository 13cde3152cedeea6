using GraphCompiler.Tests.Infrastructure;

namespace GraphCompiler.Tests.Generator;

/// <summary>Declarations (as source files) shared by the snapshot, pipeline-golden and incremental tests.</summary>
public static class TestDeclarations
{
    public const string Mlp = GeneratorHarness.Usings + """
        [Model("mlp")]
        [StaticShapes(Batch = 4, SeqLens = new[] { 8 })]
        public partial class Mlp
        {
            [Forward]
            public Expr Forward([Input(DType.Float32, "batch", "seq", "16")] Expr x) =>
                Linear(Gelu(Linear(x, 16, 32, "fc1")), 32, 4, "fc2");
        }
        """;

    /// <summary>BERT's post-LN encoder layer as a block (like Samples/Demo/TinyEncoder.cs).</summary>
    public const string EncoderLayerBlock = GeneratorHarness.Usings + """
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
        """;

    /// <summary>One encoder layer over given hidden states.</summary>
    public const string OneLayer = GeneratorHarness.Usings + """
        [Model("one_layer")]
        [StaticShapes(Batch = 2, SeqLens = new[] { 8 })]
        public partial class OneLayer
        {
            [Hyper] public int Hidden = 16;

            [Forward]
            public Expr Forward(
                [Input(DType.Float32, "batch", "seq", "Hidden")] Expr hidden,
                [Input(DType.Int64, "batch")] Expr validLength)
            {
                var mask = LengthMask(validLength, hidden);
                return Apply("layer", new EncoderLayer { Hidden = Hidden, Heads = 2, Ffn = 2 * Hidden }, hidden, mask);
            }
        }
        """;

    /// <summary>Embeddings + Repeat(2, layer) + pooler + classifier, as in Samples/Demo/TinyEncoder.cs.</summary>
    public const string TinyEncoder = GeneratorHarness.Usings + """
        [Model("tiny_encoder")]
        [StaticShapes(Batch = 2, SeqLens = new[] { 8, 16 })]
        public partial class TinyEncoder
        {
            [Hyper] public int Vocab = 100;
            [Hyper] public int Hidden = 32;
            [Hyper] public int Classes = 2;

            [Forward]
            public Expr Forward(
                [Input(DType.Int64, "batch", "seq")] Expr inputIds,
                [Input(DType.Int64, "batch", "seq")] Expr tokenTypes,
                [Input(DType.Int64, "batch")] Expr validLength)
            {
                var words = Embedding(inputIds, Vocab, Hidden, "embeddings.word_embeddings");
                var types = Embedding(tokenTypes, 2, Hidden, "embeddings.token_type_embeddings");
                var positions = PositionEmbedding(inputIds, 16, Hidden, "embeddings.position_embeddings");
                var x = LayerNorm(words + types + positions, Hidden, 1e-12, "embeddings.LayerNorm");
                var mask = LengthMask(validLength, inputIds);
                x = Repeat(2, "encoder.layer", new EncoderLayer { Hidden = Hidden, Heads = 4, Ffn = 4 * Hidden }, x, mask);
                var pooled = Tanh(Linear(Select(x, 1, 0), Hidden, Hidden, "pooler.dense"));
                return Linear(Dropout(pooled, 0.1), Hidden, Classes, "classifier");
            }
        }
        """;

    /// <summary>A model returning a tuple: span start and end logits (sibling heads that pack_qkv packs).</summary>
    public const string SpanHeads = GeneratorHarness.Usings + """
        [Model("span_heads")]
        [StaticShapes(Batch = 1, SeqLens = new[] { 4, 8 })]
        public partial class SpanHeads
        {
            [Forward]
            public (Expr, Expr) Forward([Input(DType.Float32, "batch", "seq", "16")] Expr x)
            {
                var h = Gelu(Linear(x, 16, 16, "dense"));
                var start = Linear(h, 16, 1, "qa.start");
                var end = Linear(h, 16, 1, "qa.end");
                return (start, end);
            }
        }
        """;

    /// <summary>Two [StaticShapes]: a training batch with two lengths and a serving batch of 1 (one forward per pair).</summary>
    public const string TwoBatch = GeneratorHarness.Usings + """
        [Model("two_batch")]
        [StaticShapes(Batch = 4, SeqLens = new[] { 8, 16 })]
        [StaticShapes(Batch = 1, SeqLens = new[] { 16 })]
        public partial class TwoBatch
        {
            [Forward]
            public Expr Forward([Input(DType.Float32, "batch", "seq", "16")] Expr x) =>
                LayerNorm(x + Linear(Gelu(Linear(x, 16, 32, "fc1")), 32, 16, "fc2"), 16, 1e-12, "norm");
        }
        """;

    /// <summary>A LLaMA-style pre-norm layer (RMSNorm, SwiGLU) twice, then the final RMSNorm: the ops added through the
    /// op registry (Tests/GraphCompiler.Tests.Declarations/LlamaModels.cs runs the same layer).</summary>
    public const string Llama = GeneratorHarness.Usings + """
        [Block]
        public partial class LlamaLayer
        {
            [Hyper] public int Hidden, Heads, Ffn;

            [Forward]
            public Expr Forward(Expr x, Expr mask)
            {
                var h = RmsNorm(x, Hidden, 1e-6, "input_layernorm");
                var q = Linear(h, Hidden, Hidden, "self_attn.q_proj", bias: false);
                var k = Linear(h, Hidden, Hidden, "self_attn.k_proj", bias: false);
                var v = Linear(h, Hidden, Hidden, "self_attn.v_proj", bias: false);
                var attended = x + Linear(Attention(q, k, v, mask, Heads, 0.0), Hidden, Hidden, "self_attn.o_proj", bias: false);
                var n = RmsNorm(attended, Hidden, 1e-6, "post_attention_layernorm");
                var gate = Silu(Linear(n, Hidden, Ffn, "mlp.gate_proj", bias: false));
                return attended + Linear(gate * Linear(n, Hidden, Ffn, "mlp.up_proj", bias: false), Ffn, Hidden, "mlp.down_proj", bias: false);
            }
        }

        [Model("llama")]
        [StaticShapes(Batch = 2, SeqLens = new[] { 8, 16 })]
        public partial class Llama
        {
            [Forward]
            public Expr Forward([Input(DType.Float32, "batch", "seq", "16")] Expr x, [Input(DType.Int64, "batch")] Expr validLength) =>
                RmsNorm(Repeat(2, "layers", new LlamaLayer { Hidden = 16, Heads = 2, Ffn = 40 }, x, LengthMask(validLength, x)), 16, 1e-6, "norm");
        }
        """;

    /// <summary>A class the generator ignores (incremental tests edit it).</summary>
    public const string Unrelated = """
        namespace TestModels;

        public static class Helpers
        {
            public static int Twice(int x) => 2 * x;
        }
        """;

    /// <summary>Files per snapshot/pipeline case: model name → source files.</summary>
    public static readonly IReadOnlyDictionary<string, (string Path, string Source)[]> Cases = new Dictionary<string, (string, string)[]>
    {
        ["Mlp"] = new[] { ("Mlp.cs", Mlp) },
        ["OneLayer"] = new[] { ("EncoderLayer.cs", EncoderLayerBlock), ("OneLayer.cs", OneLayer) },
        ["TinyEncoder"] = new[] { ("EncoderLayer.cs", EncoderLayerBlock), ("TinyEncoder.cs", TinyEncoder) },
        ["SpanHeads"] = new[] { ("SpanHeads.cs", SpanHeads) },
        ["TwoBatch"] = new[] { ("TwoBatch.cs", TwoBatch) },
        ["Llama"] = new[] { ("Llama.cs", Llama) },
    };
}
