using System;
using System.Collections.Generic;
using System.Linq;

namespace GraphCompiler.Generator.Ir
{
    /// <summary>Why a shape rule refused its inputs: a plain mismatch (GC0003) or a violated constraint (GC0006).</summary>
    public sealed class ShapeException : Exception
    {
        public ShapeException(string message, bool isConstraint = false)
            : base(message) => IsConstraint = isConstraint;

        public bool IsConstraint { get; }
    }

    /// <summary>The shape and dtype rule of every IR op (in the op registry; a test holds the two together): result type
    /// from input types and attributes, after the registry's arity.</summary>
    public static class ShapeRules
    {
        public static TensorType Infer(Node node, IReadOnlyList<TensorType> inputs)
        {
            // The registry's arity first: a malformed node is a shape error, never an index out of range.
            if (OpRegistry.TryGet(node.Op, out var op) && op.Kind != OpKind.Source && (inputs.Count < op.MinInputs || inputs.Count > op.MaxInputs))
            {
                var wanted = op.MinInputs == op.MaxInputs ? op.MinInputs.ToString(System.Globalization.CultureInfo.InvariantCulture)
                    : op.MaxInputs == int.MaxValue ? $"at least {op.MinInputs}" : $"{op.MinInputs} to {op.MaxInputs}";
                throw new ShapeException($"{node.Op} takes {wanted} inputs, got {inputs.Count}");
            }

            TensorType In(int i) => inputs[i];
            switch (node.Op)
            {
                case OpNames.Input:
                case OpNames.Param:
                    return node.Type;
                case OpNames.Embedding:
                    RequireElement(In(0), ElementType.I64, "ids");
                    RequireRank(In(1), 2, "embedding table");
                    return new TensorType(In(1).Element, In(0).Shape.Append(In(1).Shape[1]).ToEquatableArray());
                case OpNames.Rows:
                    {
                        var rows = node.DimList("count")[0];
                        if (rows.IsConstant && rows.Size > In(0).Shape[0].Size)
                        {
                            throw new ShapeException($"needs {rows.Size} rows but the table has {In(0).Shape[0]}", isConstraint: true);
                        }

                        return TensorType.Of(In(0).Element, rows, In(0).Shape[1]);
                    }

                case OpNames.MatMul:
                    return MatMul(In(0), In(1), node.Flag("transB"));
                case OpNames.Linear:
                case OpNames.LinearGelu:
                    {
                        var w = In(1);
                        RequireRank(w, 2, "weight");
                        var inFeatures = w.Shape[1];
                        if (In(0).Last != inFeatures)
                        {
                            throw new ShapeException($"input's last dimension is {In(0).Last} but the weight expects {inFeatures} in-features");
                        }

                        if (inputs.Count > 2 && (In(2).Rank != 1 || In(2).Shape[0] != w.Shape[0]))
                        {
                            throw new ShapeException($"bias {In(2)} does not match {w.Shape[0]} out-features");
                        }

                        return new TensorType(In(0).Element, In(0).Shape.Take(In(0).Rank - 1).Append(w.Shape[0]).ToEquatableArray());
                    }

                case OpNames.Observe:
                    if (string.IsNullOrEmpty(node.Attr("slot")) || string.IsNullOrEmpty(node.Attr("kind")))
                    {
                        throw new ShapeException("observe needs 'slot' and 'kind' attributes");
                    }

                    RequireFloat(In(0));
                    return In(0);
                case OpNames.QLinear:
                case OpNames.QLinearGelu:
                    return QLinear(inputs);
                case OpNames.QLinearRequantize:
                case OpNames.QLinearGeluRequantize:
                    return QLinearRequantize(inputs);
                case OpNames.QEmbedding:
                    return QEmbedding(inputs);
                case OpNames.Add:
                case OpNames.Sub:
                case OpNames.Mul:
                    RequireSameElement(In(0), In(1));
                    return new TensorType(In(0).Element, Broadcast(In(0), In(1)));
                case OpNames.Scale:
                case OpNames.Softmax:
                case OpNames.Gelu:
                case OpNames.Silu:
                case OpNames.Tanh:
                case OpNames.Dropout:
                    RequireFloat(In(0));
                    return In(0);
                case OpNames.MaskedSoftmax:
                    RequireFloat(In(0));
                    Broadcast(In(0), In(1));
                    if (Broadcast(In(0), In(1)).Count != In(0).Rank || !Broadcast(In(0), In(1)).SequenceEqual(In(0).Shape))
                    {
                        throw new ShapeException($"mask {In(1)} does not broadcast to scores {In(0)}");
                    }

                    return In(0);
                case OpNames.LayerNorm:
                    RequireFloat(In(0));
                    RequireNormalized(In(0), In(1), In(2));
                    return In(0);
                case OpNames.RmsNorm:
                    RequireFloat(In(0));
                    if (In(1).Rank != 1 || In(1).Shape[0] != In(0).Last)
                    {
                        throw new ShapeException($"normalizes the last dimension of {In(0)} ({In(0).Last}) but its weight is {In(1)}");
                    }

                    RequireSameElement(In(0), In(1));
                    return In(0);
                case OpNames.AddLayerNorm:
                    RequireSameElement(In(0), In(1));
                    if (!In(0).Shape.SequenceEqual(In(1).Shape))
                    {
                        throw new ShapeException($"residual {In(0)} and branch {In(1)} differ");
                    }

                    RequireNormalized(In(0), In(2), In(3));
                    return In(0);
                case OpNames.Reshape:
                    return Reshape(In(0), node.DimList("shape"));
                case OpNames.Transpose:
                    {
                        var dims = In(0).Shape.ToArray();
                        var a = Axis(node.Int("dim0"), dims.Length);
                        var b = Axis(node.Int("dim1"), dims.Length);
                        (dims[a], dims[b]) = (dims[b], dims[a]);
                        return new TensorType(In(0).Element, dims.ToEquatableArray());
                    }

                case OpNames.Permute:
                    {
                        var order = node.Ints("order").Select(o => Axis(o, In(0).Rank)).ToList();
                        if (order.Count != In(0).Rank || order.Distinct().Count() != order.Count)
                        {
                            throw new ShapeException($"order [{string.Join(",", node.Ints("order"))}] is not a permutation of {In(0).Rank} dimensions");
                        }

                        return new TensorType(In(0).Element, order.Select(o => In(0).Shape[o]).ToEquatableArray());
                    }

                case OpNames.Select:
                    {
                        var axis = Axis(node.Int("dim"), In(0).Rank);
                        var index = node.Int("index");
                        CheckIndex(In(0).Shape[axis], index, index + 1);
                        return new TensorType(In(0).Element, In(0).Shape.Where((_, i) => i != axis).ToEquatableArray());
                    }

                case OpNames.Slice:
                    {
                        var axis = Axis(node.Int("dim"), In(0).Rank);
                        var start = node.Int("start");
                        var end = node.Int("end");
                        CheckIndex(In(0).Shape[axis], start, end);
                        return new TensorType(In(0).Element, In(0).Shape.Select((d, i) => i == axis ? Dim.Of((int)(end - start)) : d).ToEquatableArray());
                    }

                case OpNames.Concat:
                    {
                        var axis = Axis(node.Int("dim"), In(0).Rank);
                        var total = 0;
                        foreach (var t in inputs)
                        {
                            RequireSameElement(In(0), t);
                            if (t.Rank != In(0).Rank || Enumerable.Range(0, t.Rank).Any(i => i != axis && t.Shape[i] != In(0).Shape[i]))
                            {
                                throw new ShapeException($"cannot concatenate {In(0)} and {t} along dimension {axis}");
                            }

                            if (!t.Shape[axis].IsConstant)
                            {
                                throw new ShapeException($"concatenation along the symbolic dimension '{t.Shape[axis]}' is not supported");
                            }

                            total += t.Shape[axis].Size;
                        }

                        return new TensorType(In(0).Element, In(0).Shape.Select((d, i) => i == axis ? Dim.Of(total) : d).ToEquatableArray());
                    }

                case OpNames.LengthMask:
                    RequireElement(In(0), ElementType.I64, "valid length");
                    RequireRank(In(0), 1, "valid length");
                    if (In(1).Rank < 2 || In(1).Shape[0] != In(0).Shape[0])
                    {
                        throw new ShapeException($"valid length {In(0)} needs a [batch, seq, ...] tensor with the same batch, got {In(1)}");
                    }

                    return TensorType.Of(node.Attr("dtype") == "f64" ? ElementType.F64 : ElementType.F32, In(0).Shape[0], Dim.Of(1), Dim.Of(1), In(1).Shape[1]);
                case OpNames.Sdpa:
                    {
                        var q = In(0);
                        var k = In(1);
                        var v = In(2);
                        RequireRank(q, 4, "query");
                        if (!q.Shape.SequenceEqual(k.Shape) || !k.Shape.SequenceEqual(v.Shape))
                        {
                            throw new ShapeException($"query {q}, key {k} and value {v} must have one shape");
                        }

                        var scoreShape = TensorType.Of(q.Element, q.Shape[0], q.Shape[1], q.Shape[2], k.Shape[2]);
                        if (!Broadcast(scoreShape, In(3)).SequenceEqual(scoreShape.Shape))
                        {
                            throw new ShapeException($"mask {In(3)} does not broadcast to attention scores {scoreShape}");
                        }

                        return q;
                    }

                case OpNames.DropoutMask:
                    RequireFloat(In(0));
                    return In(0);
                case OpNames.Saved:
                case OpNames.GradOutput:
                    return node.Type;
                case OpNames.SumTo:
                    {
                        var target = node.DimList("shape");
                        var result = new TensorType(In(0).Element, target.ToEquatableArray());
                        if (!Broadcast(In(0), result).SequenceEqual(In(0).Shape))
                        {
                            throw new ShapeException($"cannot sum {In(0)} down to {result}");
                        }

                        return result;
                    }

                case OpNames.LinearDw:
                    // dW[out, in] = Σ dy[..., out]ᵀ · x[..., in] over all leading dimensions.
                    RequireSameElement(In(0), In(1));
                    if (!In(0).Shape.Take(In(0).Rank - 1).SequenceEqual(In(1).Shape.Take(In(1).Rank - 1)))
                    {
                        throw new ShapeException($"leading dimensions of {In(0)} and {In(1)} differ");
                    }

                    return TensorType.Of(In(0).Element, In(0).Last, In(1).Last);
                case OpNames.GeluGrad:
                case OpNames.SiluGrad:
                case OpNames.TanhGrad:
                case OpNames.SoftmaxGrad:
                    RequireSameShape(In(0), In(1));
                    return In(0);
                case OpNames.GatedSoftmaxGrad:
                    RequireSameShape(In(0), In(1));
                    RequireSameShape(In(0), In(2));
                    return In(0);
                case OpNames.LayerNormDx:
                case OpNames.RmsNormDx:
                    RequireSameShape(In(0), In(1));
                    return In(0);
                case OpNames.LayerNormDw:
                case OpNames.RmsNormDw:
                    RequireSameShape(In(0), In(1));
                    return TensorType.Of(In(0).Element, In(0).Last);
                case OpNames.SelectGrad:
                    {
                        var axis = (int)node.Int("dim");
                        var dims = In(0).Shape.ToList();
                        dims.Insert(axis, node.DimList("size")[0]);
                        return new TensorType(In(0).Element, dims.ToEquatableArray());
                    }

                case OpNames.SliceGrad:
                    {
                        var axis = Axis(node.Int("dim"), In(0).Rank);
                        return new TensorType(In(0).Element, In(0).Shape.Select((d, i) => i == axis ? node.DimList("size")[0] : d).ToEquatableArray());
                    }

                case OpNames.EmbeddingGrad:
                    RequireElement(In(1), ElementType.I64, "ids");
                    return TensorType.Of(In(0).Element, Dim.Of((int)node.Int("rows")), In(0).Last);
                case OpNames.RowsGrad:
                    return TensorType.Of(In(0).Element, Dim.Of((int)node.Int("rows")), In(0).Last);
                case OpNames.SdpaGrad:
                    // dq, dk and dv stacked along a new leading dimension of 3.
                    RequireSameShape(In(0), In(1));
                    return new TensorType(In(0).Element, new[] { Dim.Of(3) }.Concat(In(0).Shape).ToEquatableArray());
                default:
                    throw new ShapeException($"unknown op '{node.Op}'");
            }
        }

        /// <summary>qlinear_requantize(..., output_scale): qlinear's rules for the other inputs, output i8.</summary>
        private static TensorType QLinearRequantize(IReadOnlyList<TensorType> inputs)
        {
            if (inputs.Count is < 5 or > 6)
            {
                throw new ShapeException($"qlinear_requantize takes (x, weight, weight_scale, input_scale[, bias], output_scale), got {inputs.Count} inputs");
            }

            var outputScale = inputs[inputs.Count - 1];
            RequireElement(outputScale, ElementType.F32, "output_scale");
            RequireRank(outputScale, 0, "output_scale");
            var result = QLinear(inputs.Take(inputs.Count - 1).ToList());
            return result with { Element = ElementType.I8 };
        }

        /// <summary>qlinear(x, weight, weight_scale, input_scale[, bias]); see <see cref="OpNames.QLinear"/>.</summary>
        private static TensorType QLinear(IReadOnlyList<TensorType> inputs)
        {
            if (inputs.Count is < 4 or > 5)
            {
                throw new ShapeException($"qlinear takes (x, weight, weight_scale, input_scale[, bias]), got {inputs.Count} inputs");
            }

            var (x, w, weightScale, inputScale) = (inputs[0], inputs[1], inputs[2], inputs[3]);
            if (x.Element is not (ElementType.F32 or ElementType.I8))
            {
                throw new ShapeException($"input must be f32 (or i8, quantized by its producer), got {x}");
            }
            RequireElement(w, ElementType.I8, "weight");
            RequireRank(w, 2, "weight");
            if (x.Last != w.Shape[1])
            {
                throw new ShapeException($"input's last dimension is {x.Last} but the weight expects {w.Shape[1]} in-features");
            }

            RequireElement(weightScale, ElementType.F32, "weight_scale");
            if (weightScale.Rank != 1 || weightScale.Shape[0] != w.Shape[0])
            {
                throw new ShapeException($"weight_scale {weightScale} does not match {w.Shape[0]} out-features");
            }

            RequireElement(inputScale, ElementType.F32, "input_scale");
            RequireRank(inputScale, 0, "input_scale");
            if (inputs.Count == 5 && (inputs[4].Element != ElementType.F32 || inputs[4].Rank != 1 || inputs[4].Shape[0] != w.Shape[0]))
            {
                throw new ShapeException($"bias {inputs[4]} does not match {w.Shape[0]} out-features");
            }

            return new TensorType(ElementType.F32, x.Shape.Take(x.Rank - 1).Append(w.Shape[0]).ToEquatableArray());
        }

        /// <summary>qembedding(ids, table, table_scale); see <see cref="OpNames.QEmbedding"/>.</summary>
        private static TensorType QEmbedding(IReadOnlyList<TensorType> inputs)
        {
            if (inputs.Count != 3)
            {
                throw new ShapeException($"qembedding takes (ids, table, table_scale), got {inputs.Count} inputs");
            }

            var (ids, table, scale) = (inputs[0], inputs[1], inputs[2]);
            RequireElement(ids, ElementType.I64, "ids");
            RequireElement(table, ElementType.I8, "table");
            RequireRank(table, 2, "embedding table");
            RequireElement(scale, ElementType.F32, "table_scale");
            if (scale.Rank != 1 || scale.Shape[0] != table.Shape[0])
            {
                throw new ShapeException($"table_scale {scale} does not match the table's {table.Shape[0]} rows");
            }

            return new TensorType(ElementType.F32, ids.Shape.Append(table.Shape[1]).ToEquatableArray());
        }

        public static int Axis(long axis, int rank)
        {
            var a = axis < 0 ? axis + rank : axis;
            if (a < 0 || a >= rank)
            {
                throw new ShapeException($"dimension {axis} is out of range for a rank-{rank} tensor");
            }

            return (int)a;
        }

        private static void CheckIndex(Dim dim, long start, long end)
        {
            if (start < 0 || end <= start || (dim.IsConstant && end > dim.Size))
            {
                throw new ShapeException($"range [{start}, {end}) is outside a dimension of size {dim}");
            }
        }

        private static TensorType MatMul(TensorType a, TensorType b, bool transB)
        {
            RequireSameElement(a, b);
            if (a.Rank < 2 || b.Rank < 2)
            {
                throw new ShapeException($"matmul needs rank ≥ 2, got {a} and {b}");
            }

            var k = a.Shape[a.Rank - 1];
            var bk = transB ? b.Shape[b.Rank - 1] : b.Shape[b.Rank - 2];
            var n = transB ? b.Shape[b.Rank - 2] : b.Shape[b.Rank - 1];
            if (k != bk)
            {
                throw new ShapeException($"inner dimensions differ: {a} × {b}{(transB ? "ᵀ" : "")} ({k} vs {bk})");
            }

            var batchA = a.Shape.Take(a.Rank - 2).ToList();
            var batchB = b.Shape.Take(b.Rank - 2).ToList();
            List<Dim> batch;
            if (batchB.Count == 0)
            {
                batch = batchA;
            }
            else if (batchA.SequenceEqual(batchB))
            {
                batch = batchA;
            }
            else
            {
                throw new ShapeException($"batch dimensions differ: {a} × {b}");
            }

            return new TensorType(a.Element, batch.Append(a.Shape[a.Rank - 2]).Append(n).ToEquatableArray());
        }

        private static EquatableArray<Dim> Broadcast(TensorType a, TensorType b)
        {
            var rank = Math.Max(a.Rank, b.Rank);
            var result = new Dim[rank];
            for (var i = 0; i < rank; i++)
            {
                var da = i < rank - a.Rank ? Dim.Of(1) : a.Shape[i - (rank - a.Rank)];
                var db = i < rank - b.Rank ? Dim.Of(1) : b.Shape[i - (rank - b.Rank)];
                if (da == db || db == Dim.Of(1))
                {
                    result[i] = da;
                }
                else if (da == Dim.Of(1))
                {
                    result[i] = db;
                }
                else
                {
                    throw new ShapeException($"{a} and {b} do not broadcast (dimension {i}: {da} vs {db})");
                }
            }

            return result.ToEquatableArray();
        }

        private static TensorType Reshape(TensorType x, IReadOnlyList<Dim> target)
        {
            // Element count as (constant product, symbols): a reshape may move constants around but must keep
            // each bucket symbol exactly once.
            static (long Product, List<string> Symbols) Count(IEnumerable<Dim> dims)
            {
                long product = 1;
                var symbols = new List<string>();
                foreach (var d in dims)
                {
                    if (d.IsConstant)
                    {
                        product *= d.Size;
                    }
                    else
                    {
                        symbols.Add(d.Symbol!);
                    }
                }

                symbols.Sort(StringComparer.Ordinal);
                return (product, symbols);
            }

            var (sourceProduct, sourceSymbols) = Count(x.Shape);
            var inferred = target.Count(d => d.IsConstant && d.Size == -1);
            if (inferred > 1 || target.Any(d => d.IsConstant && (d.Size == 0 || d.Size < -1)))
            {
                throw new ShapeException($"target shape [{string.Join(",", target)}] is invalid: at most one -1 and positive sizes");
            }

            var known = target.Where(d => !(d.IsConstant && d.Size == -1)).ToList();
            var (targetProduct, targetSymbols) = Count(known);
            var result = target.ToList();
            if (inferred == 1)
            {
                var missingSymbols = sourceSymbols.ToList();
                foreach (var s in targetSymbols)
                {
                    missingSymbols.Remove(s);
                }

                if (sourceProduct % targetProduct != 0 || missingSymbols.Count + targetSymbols.Count != sourceSymbols.Count)
                {
                    throw new ShapeException($"cannot reshape {x} to [{string.Join(",", target)}]");
                }

                var rest = sourceProduct / targetProduct;
                Dim fill;
                if (missingSymbols.Count == 0)
                {
                    fill = Dim.Of((int)rest);
                }
                else if (missingSymbols.Count == 1 && rest == 1)
                {
                    fill = Dim.Sym(missingSymbols[0]);
                }
                else
                {
                    throw new ShapeException($"cannot infer -1 in [{string.Join(",", target)}] from {x}: spell out the bucket dimensions (Batch, Seq)");
                }

                result[result.FindIndex(d => d.IsConstant && d.Size == -1)] = fill;
            }
            else if (sourceProduct != targetProduct || !sourceSymbols.SequenceEqual(targetSymbols))
            {
                throw new ShapeException($"cannot reshape {x} ({Describe(sourceProduct, sourceSymbols)} elements) to [{string.Join(",", target)}] ({Describe(targetProduct, targetSymbols)})");
            }

            return new TensorType(x.Element, result.ToEquatableArray());
        }

        private static string Describe(long product, List<string> symbols) =>
            string.Join("·", symbols.Append(product.ToString(System.Globalization.CultureInfo.InvariantCulture)));

        private static void RequireNormalized(TensorType x, TensorType weight, TensorType bias)
        {
            if (weight.Rank != 1 || weight.Shape[0] != x.Last || bias.Rank != 1 || bias.Shape[0] != x.Last)
            {
                throw new ShapeException($"normalizes the last dimension of {x} ({x.Last}) but its weight is {weight} and bias {bias}");
            }
        }

        private static void RequireSameShape(TensorType a, TensorType b)
        {
            RequireSameElement(a, b);
            if (!a.Shape.SequenceEqual(b.Shape))
            {
                throw new ShapeException($"{a} and {b} must have one shape");
            }
        }

        private static void RequireRank(TensorType t, int rank, string what)
        {
            if (t.Rank != rank)
            {
                throw new ShapeException($"{what} must have rank {rank}, got {t}");
            }
        }

        private static void RequireElement(TensorType t, ElementType element, string what)
        {
            if (t.Element != element)
            {
                throw new ShapeException($"{what} must be {element.ToString().ToLowerInvariant()}, got {t}");
            }
        }

        private static void RequireFloat(TensorType t)
        {
            if (t.Element is ElementType.I64 or ElementType.I8)
            {
                throw new ShapeException($"needs a floating-point tensor, got {t}");
            }
        }

        private static void RequireSameElement(TensorType a, TensorType b)
        {
            if (a.Element != b.Element)
            {
                throw new ShapeException($"element types differ: {a} and {b}");
            }
        }
    }
}
