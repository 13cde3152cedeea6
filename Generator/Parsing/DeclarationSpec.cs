using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Diagnostics;

namespace GraphCompiler.Generator.Parsing
{
    /// <summary>One [Block] or [Model] class as read from source (or from a referenced assembly's manifest): plain values
    /// only. <paramref name="Base"/> is set on a configuration-only model (no Forward of its own); an
    /// <paramref name="IsAbstract"/> model is a base for those and is not compiled itself.</summary>
    public sealed record DeclarationSpec(
        string Name,
        string Namespace,
        string FullName,
        string FileName,
        LocationInfo? Location,
        ModelInfo? Model,
        EquatableArray<HyperSpec> Hypers,
        ForwardSpec? Forward,
        EquatableArray<DiagnosticInfo> Diagnostics,
        BaseModelSpec? Base = null,
        bool IsAbstract = false);

    /// <summary>A configuration-only model's base model and the hyper-parameter values its constructor sets.</summary>
    public sealed record BaseModelSpec(string FullName, string Name, EquatableArray<HyperAssignment> Assignments, LocationInfo? Location);

    /// <summary><c>Hyper = constant;</c> in a configuration-only model's constructor.</summary>
    public sealed record HyperAssignment(string Name, double Value, LocationInfo? Location);

    /// <summary>What [Model] and [StaticShapes] add to a declaration; <paramref name="Quantize"/> is its [Quantize], if any.</summary>
    public sealed record ModelInfo(string ModelName, EquatableArray<StaticShapesInfo> Shapes, LocationInfo? ShapesLocation, QuantizeInfo? Quantize = null)
    {
        /// <summary>Every (batch, seq) bucket, in declaration order: the attributes in source order, each one's SeqLens in order.</summary>
        public IEnumerable<(int Batch, int Seq)> Buckets => Shapes.SelectMany(s => s.SeqLens.Select(seq => (s.Batch, seq)));
    }

    /// <summary>One [StaticShapes] attribute: a batch size, its sequence lengths, and where it is written.</summary>
    public sealed record StaticShapesInfo(int Batch, EquatableArray<int> SeqLens, LocationInfo? Location);

    /// <summary>[Quantize]: the parameter-name prefixes whose GEMMs stay fp32, in declaration order.</summary>
    public sealed record QuantizeInfo(EquatableArray<string> Exclude, LocationInfo? Location);

    public enum HyperKind
    {
        Int,
        Float,
        Bool,
    }

    /// <summary>A hyper-parameter; <paramref name="Default"/> is its initializer's constant, if any.</summary>
    public sealed record HyperSpec(string Name, HyperKind Kind, double? Default, LocationInfo? Location);

    public sealed record ForwardSpec(EquatableArray<InputSpec> Inputs, EquatableArray<StatementSpec> Body, LocationInfo? Location);

    /// <summary>A Forward parameter; for models, its [Input] dtype and dims ("batch", "seq", a number or a hyper name).</summary>
    public sealed record InputSpec(string Name, DTypeSpec? DType, EquatableArray<string> Dims, LocationInfo? Location);

    public enum DTypeSpec
    {
        Float32,
        Float64,
        Int64,
    }

    public enum StatementKind
    {
        Let,
        Assign,
        Return,
    }

    public sealed record StatementSpec(StatementKind Kind, string? Target, DslExpr Value, LocationInfo? Location);
}
