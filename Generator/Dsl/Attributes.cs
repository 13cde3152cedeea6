using System;

namespace GraphCompiler
{
    /// <summary>A reusable layer: hyper-parameters plus a declarative <see cref="ForwardAttribute"/> method.
    /// Blocks are inlined into every model that applies them.</summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false)]
    public sealed class BlockAttribute : Attribute { }

    /// <summary>A compiled model: the generator emits a TorchSharp module named <c>{Class}Module</c> for it.</summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false)]
    public sealed class ModelAttribute : Attribute
    {
        public ModelAttribute(string name) { Name = name; }

        /// <summary>The model's registry name, e.g. <c>bert_12_768_12</c>.</summary>
        public string Name { get; }
    }

    /// <summary>A hyper-parameter of a block or model: an int, float, double or bool field or property.
    /// Its initializer is the default; a model sets it with an object initializer when it applies the block.</summary>
    [AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, Inherited = false)]
    public sealed class HyperAttribute : Attribute { }

    /// <summary>The declarative forward of a block or model. Its body is read by the generator as a restricted
    /// language: locals, calls to <see cref="Ops"/>, <c>+</c> <c>-</c> <c>*</c> on tensors and hyper-parameters,
    /// and <c>return</c>.</summary>
    [AttributeUsage(AttributeTargets.Method, Inherited = false)]
    public sealed class ForwardAttribute : Attribute { }

    /// <summary>The static shapes a model is compiled for: one forward per (Batch, sequence length) bucket. Repeat the
    /// attribute for more batch sizes, e.g. a training batch of 32 and a serving batch of 1; training samplers use the
    /// largest batch's buckets.</summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = true)]
    public sealed class StaticShapesAttribute : Attribute
    {
        public int Batch { get; set; }

        public int[] SeqLens { get; set; } = new int[0];
    }

    /// <summary>Opts a [Model] into an int8 variant: the generator also emits <c>{Class}Int8Module</c> (per-channel int8
    /// weights, per-tensor int8 activations) and gives <c>{Class}Module</c> a calibration forward,
    /// <c>ForwardObserved</c>. Every GEMM over the sequence (one with a "seq" dimension) whose weight is a parameter is
    /// quantized; GEMMs over batch rows only (pooler, classifier) stay fp32, as do embeddings (gathers).</summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false)]
    public sealed class QuantizeAttribute : Attribute
    {
        /// <summary>Parameter-name prefixes whose GEMMs stay fp32, e.g. <c>"encoder.layer.0."</c> (matched against the
        /// GEMM weight's name and, for a packed weight, the names it packs). Each must match a GEMM that would be
        /// quantized.</summary>
        public string[] Exclude { get; set; } = new string[0];
    }

    /// <summary>Declares a model input: its element type and dimensions. A dimension is <c>"batch"</c>,
    /// <c>"seq"</c>, an integer literal or the name of one of the model's hyper-parameters.</summary>
    [AttributeUsage(AttributeTargets.Parameter, Inherited = false)]
    public sealed class InputAttribute : Attribute
    {
        public InputAttribute(DType dtype, params string[] dims)
        {
            DType = dtype;
            Dims = dims;
        }

        public DType DType { get; }

        public string[] Dims { get; }
    }

    /// <summary>Written by the generator, once per [Block] and [Model] of an assembly: the declaration as the generator read
    /// it, so that a project referencing the assembly can apply the block or derive from the model without its source.
    /// Not meant to be written by hand.</summary>
    [AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true, Inherited = false)]
    public sealed class DeclarationManifestAttribute : Attribute
    {
        public DeclarationManifestAttribute(string fullName, int formatVersion, string payload)
        {
            FullName = fullName;
            FormatVersion = formatVersion;
            Payload = payload;
        }

        /// <summary>The declaring class, namespace-qualified.</summary>
        public string FullName { get; }

        /// <summary>The payload's format; a generator reads only the versions it knows.</summary>
        public int FormatVersion { get; }

        /// <summary>The serialized declaration.</summary>
        public string Payload { get; }
    }

    /// <summary>Element types of graph values.</summary>
    public enum DType
    {
        Float32,
        Float64,
        Int64,
    }

    /// <summary>Parameter initialisers.</summary>
    public enum Init
    {
        /// <summary>All zeros (biases).</summary>
        Zeros,
        /// <summary>All ones (LayerNorm gain).</summary>
        Ones,
        /// <summary>Truncation-free normal with std 0.02, as BERT initialises weights.</summary>
        Normal,
        /// <summary>Kaiming-uniform as torch.nn.Linear does.</summary>
        KaimingUniform,
    }
}
