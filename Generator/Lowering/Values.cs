using System.Collections.Generic;
using GraphCompiler.Generator.Ir;
using GraphCompiler.Generator.Parsing;

namespace GraphCompiler.Generator.Lowering
{
    /// <summary>What a Forward expression evaluates to while lowering (never leaves the lowering step).</summary>
    internal abstract class Value
    {
        public abstract string Kind { get; }
    }

    internal sealed class TensorValue : Value
    {
        public TensorValue(int id) => Id = id;

        public int Id { get; }

        public override string Kind => "tensor";
    }

    internal sealed class NumberValue : Value
    {
        public NumberValue(double number, bool isInteger)
        {
            Number = number;
            IsInteger = isInteger;
        }

        public double Number { get; }

        public bool IsInteger { get; }

        public override string Kind => IsInteger ? "int" : "number";
    }

    internal sealed class StringValue : Value
    {
        public StringValue(string text) => Text = text;

        public string Text { get; }

        public override string Kind => "string";
    }

    internal sealed class BoolValue : Value
    {
        public BoolValue(bool flag) => Flag = flag;

        public bool Flag { get; }

        public override string Kind => "bool";
    }

    internal sealed class DimValue : Value
    {
        public DimValue(Dim dim) => Dim = dim;

        public Dim Dim { get; }

        public override string Kind => "dimension";
    }

    internal sealed class EnumValue : Value
    {
        public EnumValue(string type, string member)
        {
            Type = type;
            Member = member;
        }

        public string Type { get; }

        public string Member { get; }

        public override string Kind => Type;
    }

    internal sealed class ListValue : Value
    {
        public ListValue(IReadOnlyList<Value> items, bool isTuple)
        {
            Items = items;
            IsTuple = isTuple;
        }

        public IReadOnlyList<Value> Items { get; }

        public bool IsTuple { get; }

        public override string Kind => IsTuple ? "tuple" : "array";
    }

    /// <summary>A configured block (<c>new Block { Hidden = 64 }</c>), ready to be applied.</summary>
    internal sealed class BlockValue : Value
    {
        public BlockValue(DeclarationSpec spec, IReadOnlyDictionary<string, Value> hypers, LocationInfo? location)
        {
            Spec = spec;
            Hypers = hypers;
            Location = location;
        }

        public DeclarationSpec Spec { get; }

        public IReadOnlyDictionary<string, Value> Hypers { get; }

        public LocationInfo? Location { get; }

        public override string Kind => "block " + Spec.Name;
    }
}
