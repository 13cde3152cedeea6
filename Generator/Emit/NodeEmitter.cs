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
            string In(int i) => name(node.Inputs[i]);
            string Dims(IEnumerable<Dim> dims) => string.Join(", ", dims.Select(size));
            string Int(string key) => node.Int(key).ToString(CultureInfo.InvariantCulture);
            string Num(string key) => Literal(node.Float(key));
            return node.Op switch
            {
                OpNames.Embedding => $"Kernels.Embedding({In(0)}, {In(1)})",
                OpNames.Rows => $"Kernels.Rows({In(0)}, {Dims(node.DimList("count"))})",
                OpNames.MatMul => $"Kernels.MatMul({In(0)}, {In(1)}, transB: {(node.Flag("transB") ? "true" : "false")})",
                OpNames.Linear => $"Kernels.Linear({In(0)}, {In(1)}, {(node.Inputs.Count > 2 ? In(2) : "null")})",
                OpNames.LinearGelu => $"Kernels.LinearGelu({In(0)}, {In(1)}, {(node.Inputs.Count > 2 ? In(2) : "null")})",
                OpNames.Observe => $"Kernels.Observe({In(0)}, observer, \"{node.Attr("slot")}\", \"{node.Attr("kind")}\")",
                OpNames.QLinear or OpNames.QLinearGelu =>
                    $"Kernels.QuantizedLinear({In(0)}, {In(3)}, {In(1)}, {In(2)}, {(node.Inputs.Count > 4 ? In(4) : "null")}, gelu: {(OpNames.HasGelu(node.Op) ? "true" : "false")}, Mode)",
                OpNames.QLinearRequantize or OpNames.QLinearGeluRequantize =>
                    $"Kernels.QuantizedLinearRequantize({In(0)}, {In(3)}, {In(1)}, {In(2)}, {(node.Inputs.Count > 5 ? In(4) : "null")}, gelu: {(OpNames.HasGelu(node.Op) ? "true" : "false")}, {In(node.Inputs.Count - 1)}, Mode)",
                OpNames.QEmbedding => $"Kernels.QuantizedEmbedding({In(0)}, {In(1)}, {In(2)})",
                OpNames.Add => $"torch.add({In(0)}, {In(1)})",
                OpNames.Sub => $"torch.sub({In(0)}, {In(1)})",
                OpNames.Mul => $"torch.mul({In(0)}, {In(1)})",
                OpNames.Scale => $"torch.mul({In(0)}, {Num("factor")})",
                OpNames.Reshape => $"{In(0)}.reshape({Dims(node.DimList("shape"))})",
                OpNames.Transpose => $"{In(0)}.transpose({Int("dim0")}, {Int("dim1")})",
                OpNames.Permute => $"{In(0)}.permute({string.Join(", ", node.Ints("order").Select(o => o.ToString(CultureInfo.InvariantCulture) + "L"))})",
                OpNames.Softmax => $"torch.softmax({In(0)}, -1)",
                OpNames.MaskedSoftmax => $"Kernels.MaskedSoftmax({In(0)}, {In(1)})",
                OpNames.LayerNorm => $"Kernels.LayerNorm({In(0)}, {In(1)}, {In(2)}, {Num("eps")})",
                OpNames.AddLayerNorm => $"Kernels.AddLayerNorm({In(0)}, {In(1)}, {In(2)}, {In(3)}, {Num("eps")})",
                OpNames.Gelu => $"Kernels.Gelu({In(0)})",
                OpNames.Tanh => $"torch.tanh({In(0)})",
                OpNames.Dropout => $"Kernels.Dropout({In(0)}, {Num("p")}, training)",
                OpNames.Select => $"{In(0)}.select({Int("dim")}, {Int("index")})",
                OpNames.Slice => $"{In(0)}.narrow({Int("dim")}, {Int("start")}, {(node.Int("end") - node.Int("start")).ToString(CultureInfo.InvariantCulture)})",
                OpNames.Concat => $"torch.cat(new[] {{ {string.Join(", ", node.Inputs.Select(name))} }}, {Int("dim")})",
                OpNames.LengthMask => $"Kernels.LengthMask({In(0)}, {Dims(new[] { node.Type.Last })}, ScalarType.{(node.Type.Element == ElementType.F64 ? "Float64" : "Float32")})",
                OpNames.Sdpa => node.Float("dropout") == 0
                    ? $"Kernels.Attention({In(0)}, {In(1)}, {In(2)}, {In(3)}, 0.0, training: false)"
                    : $"Kernels.Attention({In(0)}, {In(1)}, {In(2)}, {In(3)}, {Num("dropout")}, training)",
                OpNames.DropoutMask => $"Kernels.DropoutMask({In(0)}, {Num("p")})",
                OpNames.SumTo => $"Kernels.SumTo({In(0)}, {Dims(node.DimList("shape"))})",
                OpNames.LinearDw => $"Kernels.LinearWeightGrad({In(0)}, {In(1)})",
                OpNames.GeluGrad => $"Kernels.GeluGrad({In(0)}, {In(1)})",
                OpNames.TanhGrad => $"Kernels.TanhGrad({In(0)}, {In(1)})",
                OpNames.SoftmaxGrad => $"Kernels.SoftmaxGrad({In(0)}, {In(1)})",
                OpNames.GatedSoftmaxGrad => $"Kernels.SoftmaxGrad({In(0)}, {In(1)}, {In(2)}, {Num("scale")})",
                OpNames.LayerNormDx => $"Kernels.LayerNormInputGrad({In(0)}, {In(1)}, {In(2)}, {Num("eps")})",
                OpNames.LayerNormDw => $"Kernels.LayerNormWeightGrad({In(0)}, {In(1)}, {Num("eps")})",
                OpNames.SelectGrad => $"Kernels.SelectGrad({In(0)}, {Int("dim")}, {Int("index")}, {Dims(node.DimList("size"))})",
                OpNames.SliceGrad => $"Kernels.SliceGrad({In(0)}, {Int("dim")}, {Int("start")}, {Dims(node.DimList("size"))})",
                OpNames.EmbeddingGrad => $"Kernels.EmbeddingGrad({In(0)}, {In(1)}, {Int("rows")})",
                OpNames.RowsGrad => $"Kernels.RowsGrad({In(0)}, {Int("rows")})",
                OpNames.SdpaGrad => $"Kernels.AttentionGrad({In(0)}, {In(1)}, {In(2)}, {In(3)}, {In(4)})",
                _ => throw new InvalidOperationException($"no emitter for op '{node.Op}'"),
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
