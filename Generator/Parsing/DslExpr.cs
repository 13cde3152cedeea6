namespace GraphCompiler.Generator.Parsing
{
    /// <summary>An expression of the Forward language, as a value-equatable tree.</summary>
    public abstract record DslExpr(LocationInfo? Location);

    /// <summary>A local or a Forward input.</summary>
    public sealed record RefExpr(string Name, LocationInfo? Location) : DslExpr(Location);

    /// <summary>A hyper-parameter of the enclosing declaration.</summary>
    public sealed record HyperExpr(string Name, LocationInfo? Location) : DslExpr(Location);

    public sealed record NumberExpr(double Value, bool IsInteger, LocationInfo? Location) : DslExpr(Location);

    public sealed record StringExpr(string Value, LocationInfo? Location) : DslExpr(Location);

    public sealed record BoolExpr(bool Value, LocationInfo? Location) : DslExpr(Location);

    /// <summary>Ops.Batch or Ops.Seq: a dimension of the static shape bucket.</summary>
    public sealed record SymDimExpr(string Name, LocationInfo? Location) : DslExpr(Location);

    /// <summary>A member of a DSL enum (Init.Normal, DType.Int64).</summary>
    public sealed record EnumExpr(string Type, string Member, LocationInfo? Location) : DslExpr(Location);

    public sealed record UnaryExpr(string Operator, DslExpr Operand, LocationInfo? Location) : DslExpr(Location);

    public sealed record BinaryExpr(string Operator, DslExpr Left, DslExpr Right, LocationInfo? Location) : DslExpr(Location);

    public sealed record ArrayExpr(EquatableArray<DslExpr> Items, LocationInfo? Location) : DslExpr(Location);

    public sealed record TupleExpr(EquatableArray<DslExpr> Items, LocationInfo? Location) : DslExpr(Location);

    /// <summary>A call of an op of GraphCompiler.Ops; arguments keyed by the op's parameter names.</summary>
    public sealed record CallExpr(string Op, EquatableArray<NamedArg> Args, LocationInfo? Location) : DslExpr(Location);

    /// <summary><c>new SomeBlock { Hyper = value, ... }</c>; <paramref name="DeclaringAssembly"/> names the referenced
    /// assembly the block comes from, null when it is declared in the same compilation.</summary>
    public sealed record NewBlockExpr(string BlockFullName, EquatableArray<NamedArg> Initializers, LocationInfo? Location, string? DeclaringAssembly = null) : DslExpr(Location);

    public sealed record NamedArg(string Name, DslExpr Value);
}
