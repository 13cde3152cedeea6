using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Emit
{
    /// <summary>One IR node → one C# expression calling the Runtime kernels. A bucket dimension is the name of the body's
    /// <c>long</c> parameter (<see cref="Size"/>), so one body serves every declared bucket.</summary>
    public static class NodeEmitter
    {
        /// <param name="size">Renders a dimension; the caller may record which bucket sizes a body reads.</param>
        public static string Expression(Node node, Func<int, string> name, Func<Dim, string> size)
        {
            var call = OpRegistry.TryGet(node.Op, out var op) ? op.Kernel : null;
            if (call is null)
            {
                throw new InvalidOperationException($"no kernel for op '{node.Op}'");
            }

            var args = string.Join(", ", call.Args.Select(a => Argument(node, a, name, size)));
            return call.OnInput ? $"{name(node.Inputs[0])}.{call.Target}({args})" : $"{call.Target}({args})";
        }

        /// <summary>One kernel argument as C#, from the registry's description of where it comes from.</summary>
        private static string Argument(Node node, KernelArg arg, Func<int, string> name, Func<Dim, string> size)
        {
            string Flag(bool value) => (arg.Label ?? "") + (value ? "true" : "false");
            return arg.Kind switch
            {
                ArgKind.Input => name(node.Inputs[arg.Index]),
                ArgKind.OptionalInput => node.Inputs.Count >= arg.PresentFrom ? name(node.Inputs[arg.Index]) : "null",
                ArgKind.LastInput => name(node.Inputs[node.Inputs.Count - 1]),
                ArgKind.AllInputs => $"new[] {{ {string.Join(", ", node.Inputs.Select(name))} }}",
                ArgKind.Int => node.Int(arg.Key!).ToString(CultureInfo.InvariantCulture),
                ArgKind.Float => Literal(node.Float(arg.Key!)),
                ArgKind.Bool => Flag(node.Flag(arg.Key!)),
                ArgKind.Ints => string.Join(", ", node.Ints(arg.Key!).Select(o => o.ToString(CultureInfo.InvariantCulture) + "L")),
                ArgKind.Dims => string.Join(", ", node.DimList(arg.Key!).Select(size)),
                ArgKind.Text => "\"" + node.Attr(arg.Key!) + "\"",
                ArgKind.Span => (node.Int(arg.EndKey!) - node.Int(arg.Key!)).ToString(CultureInfo.InvariantCulture),
                ArgKind.ResultLastDim => size(node.Type.Last),
                ArgKind.ResultDType => "ScalarType." + (node.Type.Element == ElementType.F64 ? "Float64" : "Float32"),
                ArgKind.ConstInt => arg.Value.ToString(CultureInfo.InvariantCulture),
                ArgKind.ConstBool => Flag(arg.Value != 0),
                ArgKind.Training => arg.Key is not null && node.Float(arg.Key) == 0 ? "training: false" : "training",
                ArgKind.Mode => "Mode",
                ArgKind.Observer => "observer",
                _ => throw new InvalidOperationException($"unknown kernel argument kind {arg.Kind}"),
            };
        }

        /// <summary>A dimension as a C# <c>long</c> expression: a literal, or the bucket size parameter it names.</summary>
        public static string Size(Dim dim) => dim.Symbol switch
        {
            null => dim.Size.ToString(CultureInfo.InvariantCulture) + "L",
            "batch" or "seq" => dim.Symbol,
            _ => throw new InvalidOperationException("unknown dimension symbol " + dim.Symbol),
        };

        /// <summary>A C# double literal that round-trips.</summary>
        public static string Literal(double value)
        {
            var text = value.ToString("R", CultureInfo.InvariantCulture);
            return text.Contains(".") || text.Contains("E") ? text : text + ".0";
        }
    }
}
