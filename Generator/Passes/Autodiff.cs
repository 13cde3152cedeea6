using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Passes
{
    /// <summary>A forward graph's reverse-mode derivative. <see cref="Graph"/> reads forward values through
    /// <c>saved</c> nodes (attribute <c>ref</c>) and output gradients through <c>grad_output</c> nodes (attribute
    /// <c>index</c>); its outputs are the gradients of <see cref="Targets"/> (forward parameter and float input ids), in order.
    /// <see cref="SavedValues"/> is what the forward must keep for the backward; everything else it may free.</summary>
    public sealed record BackwardGraph(Graph Graph, EquatableArray<int> Targets, EquatableArray<int> SavedValues);

    /// <summary>Reverse-mode autodiff on the IR: one gradient rule per op (the op registry's gradient terms, or a rule
    /// coded here where it needs shapes), contributions summed where a value has several consumers, broadcasts undone
    /// with sum_to. What to save is decided per rule: linear keeps its input (for dW), gelu and silu their input (the
    /// derivative is recomputed), tanh/softmax their outputs, layer_norm and rms_norm their input (the statistics are
    /// recomputed: one cheap pass instead of extra saved tensors), dropout its mask.</summary>
    public static class Autodiff
    {
        public static BackwardGraph Differentiate(Graph forward) => new Builder(forward).Run();

        /// <summary>The ops with a gradient written as code here (for the registry's completeness test).</summary>
        public static IEnumerable<string> CustomRuleOps => Builder.CustomRules.Keys;

        private sealed class Builder
        {
            private readonly Graph _forward;
            private readonly Dictionary<int, Node> _byId;
            private readonly HashSet<int> _differentiable = new();
            private readonly Dictionary<int, List<int>> _grads = new();
            private readonly Dictionary<int, int> _saved = new();
            private readonly List<Node> _nodes = new();
            private readonly Dictionary<int, TensorType> _types = new();
            private int _next;
            private Node _current = null!;

            public Builder(Graph forward)
            {
                _forward = forward;
                _byId = forward.ById();
                _next = forward.NextId;
            }

            public BackwardGraph Run()
            {
                foreach (var node in _forward.Nodes)
                {
                    var isSource = (node.Op == OpNames.Param || node.Op == OpNames.Input) && node.Type.Element != ElementType.I64;
                    var flows = node.Op is not (OpNames.DropoutMask or OpNames.LengthMask) && node.Inputs.Any(_differentiable.Contains);
                    if ((isSource || flows) && node.Type.Element != ElementType.I64)
                    {
                        _differentiable.Add(node.Id);
                    }
                }

                for (var i = 0; i < _forward.Outputs.Count; i++)
                {
                    var output = _forward.Outputs[i];
                    if (_differentiable.Contains(output))
                    {
                        _current = _byId[output];
                        var g = Emit(OpNames.GradOutput, Array.Empty<int>(), new[] { Attr.Int("index", i) }, _byId[output].Type);
                        Contribute(output, g);
                    }
                }

                foreach (var node in _forward.Nodes.Reverse())
                {
                    if (node.Op is OpNames.Param or OpNames.Input || !_grads.ContainsKey(node.Id))
                    {
                        continue;
                    }

                    _current = node;
                    Rule(node, GradOf(node.Id));
                }

                var targets = _forward.Nodes.Where(n => (n.Op == OpNames.Param || n.Op == OpNames.Input) && _grads.ContainsKey(n.Id)).ToList();
                var outputs = new List<int>();
                foreach (var target in targets)
                {
                    _current = target;
                    outputs.Add(GradOf(target.Id));
                }

                var graph = new Graph(_forward.Name + ".backward", _nodes.ToEquatableArray(), outputs.ToEquatableArray());
                return new BackwardGraph(graph, targets.Select(t => t.Id).ToEquatableArray(), _saved.Keys.OrderBy(k => k).ToEquatableArray());
            }

            private int GradOf(int id)
            {
                var parts = _grads[id];
                var sum = parts[0];
                for (var i = 1; i < parts.Count; i++)
                {
                    sum = Emit(OpNames.Add, new[] { sum, parts[i] }, Array.Empty<Attr>());
                }

                _grads[id] = new List<int> { sum };
                return sum;
            }

            private void Contribute(int forwardId, int grad)
            {
                if (!_differentiable.Contains(forwardId))
                {
                    return;
                }

                if (!_grads.TryGetValue(forwardId, out var list))
                {
                    _grads[forwardId] = list = new List<int>();
                }

                list.Add(grad);
            }

            private bool Needs(int forwardId) => _differentiable.Contains(forwardId);

            private TensorType TypeOf(int id) => id < _forward.NextId ? _byId[id].Type : _types[id];

            private int Saved(int forwardId)
            {
                if (!_saved.TryGetValue(forwardId, out var id))
                {
                    var source = _byId[forwardId];
                    id = _next++;
                    _nodes.Add(new Node(id, OpNames.Saved, EquatableArray<int>.Empty, source.Type, EquatableArray.Of(Attr.Int("ref", forwardId)), source.Scope, source.Source));
                    _types[id] = source.Type;
                    _saved[forwardId] = id;
                }

                return id;
            }

            private int Emit(string op, int[] inputs, Attr[] attrs, TensorType? type = null)
            {
                var node = new Node(_next++, op, inputs.ToEquatableArray(), type ?? TensorType.Of(ElementType.F32), attrs.OrderBy(a => a.Key, StringComparer.Ordinal).ToEquatableArray(), _current.Scope, _current.Source);
                if (type is null)
                {
                    node = node with { Type = ShapeRules.Infer(node, inputs.Select(TypeOf).ToList()) };
                }

                _nodes.Add(node);
                _types[node.Id] = node.Type;
                return node.Id;
            }

            /// <summary>Undo broadcasting: sum g down to the forward operand's shape (nothing when they agree).</summary>
            private int SumTo(int g, int forwardOperand)
            {
                var target = _byId[forwardOperand].Type;
                return TypeOf(g).Shape.SequenceEqual(target.Shape) ? g : Emit(OpNames.SumTo, new[] { g }, new[] { Attr.Dims("shape", target.Shape) });
            }

            /// <summary>The ops whose gradient is code here (the registry marks them Custom); the rest are the registry's data.</summary>
            public static readonly Dictionary<string, Action<Builder, Node, int>> CustomRules = new(StringComparer.Ordinal)
            {
                [OpNames.MatMul] = (b, n, g) => b.MatMul(n, g),
                [OpNames.Reshape] = (b, n, g) => b.Contribute(n.Inputs[0], b.Emit(OpNames.Reshape, new[] { g }, new[] { Attr.Dims("shape", b._byId[n.Inputs[0]].Type.Shape) })),
                [OpNames.Permute] = (b, n, g) => b.Permute(n, g),
                [OpNames.Select] = (b, n, g) =>
                {
                    var x = n.Inputs[0];
                    var axis = ShapeRules.Axis(n.Int("dim"), b._byId[x].Type.Rank);
                    b.Contribute(x, b.Emit(OpNames.SelectGrad, new[] { g }, new[] { Attr.Int("dim", axis), Attr.Int("index", n.Int("index")), Attr.Dims("size", new[] { b._byId[x].Type.Shape[axis] }) }));
                },
                [OpNames.Slice] = (b, n, g) =>
                {
                    var x = n.Inputs[0];
                    var axis = ShapeRules.Axis(n.Int("dim"), b._byId[x].Type.Rank);
                    b.Contribute(x, b.Emit(OpNames.SliceGrad, new[] { g }, new[] { Attr.Int("dim", axis), Attr.Int("start", n.Int("start")), Attr.Dims("size", new[] { b._byId[x].Type.Shape[axis] }) }));
                },
                [OpNames.Concat] = (b, n, g) => b.Concat(n, g),
                [OpNames.Embedding] = (b, n, g) =>
                    b.Contribute(n.Inputs[1], b.Emit(OpNames.EmbeddingGrad, new[] { g, b.Saved(n.Inputs[0]) }, new[] { Attr.Int("rows", b._byId[n.Inputs[1]].Type.Shape[0].Size) })),
                [OpNames.Rows] = (b, n, g) =>
                    b.Contribute(n.Inputs[0], b.Emit(OpNames.RowsGrad, new[] { g }, new[] { Attr.Int("rows", b._byId[n.Inputs[0]].Type.Shape[0].Size) })),
                [OpNames.Sdpa] = (b, n, g) => b.Sdpa(n, g),
            };

            private void Rule(Node n, int g)
            {
                var spec = OpRegistry.TryGet(n.Op, out var op) ? op.Gradient : null;
                if (spec?.Kind == GradientKind.Rules)
                {
                    ApplyRules(n, g, spec);
                }
                else if (spec?.Kind == GradientKind.Custom && CustomRules.TryGetValue(n.Op, out var rule))
                {
                    rule(this, n, g);
                }
                else
                {
                    throw new InvalidOperationException($"autodiff: no gradient rule for {IrText.PrintNode(n)}" + (spec?.Kind == GradientKind.None ? " (" + spec.Reason + ")" : ""));
                }
            }

            /// <summary>The registry's gradient terms: per input that needs one, op(g, saved values){attrs}, summed
            /// down to the input's shape where the forward broadcast.</summary>
            private void ApplyRules(Node n, int g, GradientSpec spec)
            {
                foreach (var term in spec.Terms)
                {
                    if (term.Input >= n.Inputs.Count || !Needs(n.Inputs[term.Input]))
                    {
                        continue;
                    }

                    var input = n.Inputs[term.Input];
                    var grad = g;
                    if (term.Op is not null)
                    {
                        var inputs = term.Args.Select(a => a.Kind switch
                        {
                            GradArgKind.OutputGrad => g,
                            GradArgKind.SavedInput => Saved(n.Inputs[a.Index]),
                            _ => Saved(n.Id),
                        }).ToArray();
                        var attrs = (term.CopyAttrs ? n.Attrs.ToArray() : Array.Empty<Attr>()).Concat(term.Attrs.Select(kv => new Attr(kv.Key, kv.Value))).ToArray();
                        grad = Emit(term.Op, inputs, attrs);
                    }

                    Contribute(input, term.SumTo ? SumTo(grad, input) : grad);
                }
            }

            private void Permute(Node n, int g)
            {
                var order = n.Ints("order").Select(o => (long)ShapeRules.Axis(o, n.Type.Rank)).ToList();
                var inverse = new long[order.Count];
                for (var i = 0; i < order.Count; i++)
                {
                    inverse[order[i]] = i;
                }

                Contribute(n.Inputs[0], Emit(OpNames.Permute, new[] { g }, new[] { Attr.Ints("order", inverse) }));
            }

            private void Concat(Node n, int g)
            {
                var axis = ShapeRules.Axis(n.Int("dim"), n.Type.Rank);
                var offset = 0;
                foreach (var part in n.Inputs)
                {
                    var size = _byId[part].Type.Shape[axis].Size;
                    if (Needs(part))
                    {
                        Contribute(part, Emit(OpNames.Slice, new[] { g }, new[] { Attr.Int("dim", axis), Attr.Int("start", offset), Attr.Int("end", offset + size) }));
                    }

                    offset += size;
                }
            }

            private void Sdpa(Node n, int g)
            {
                if (n.Float("dropout") != 0)
                {
                    throw new InvalidOperationException($"autodiff: %{n.Id} sdpa with dropout has no saved mask; training graphs keep attention dropout explicit");
                }

                var stacked = Emit(OpNames.SdpaGrad, new[] { g, Saved(n.Inputs[0]), Saved(n.Inputs[1]), Saved(n.Inputs[2]), Saved(n.Inputs[3]) }, Array.Empty<Attr>());
                for (var i = 0; i < 3; i++)
                {
                    if (Needs(n.Inputs[i]))
                    {
                        Contribute(n.Inputs[i], Emit(OpNames.Select, new[] { stacked }, new[] { Attr.Int("dim", 0), Attr.Int("index", i) }));
                    }
                }
            }

            private void MatMul(Node n, int g)
            {
                var a = n.Inputs[0];
                var b = n.Inputs[1];
                var transB = n.Flag("transB");
                var bType = _byId[b].Type;
                if (Needs(a))
                {
                    // y = a·b → da = g·bᵀ;  y = a·bᵀ → da = g·b.
                    Contribute(a, Emit(OpNames.MatMul, new[] { g, Saved(b) }, new[] { Attr.Bool("transB", !transB) }));
                }

                if (!Needs(b))
                {
                    return;
                }

                if (bType.Rank == 2 && _byId[a].Type.Rank > 2)
                {
                    // A shared weight: its gradient sums over every leading dimension.
                    var dw = Emit(OpNames.LinearDw, new[] { g, Saved(a) }, Array.Empty<Attr>()); // [n, k] = Σ gᵀ·a
                    Contribute(b, transB ? dw : Emit(OpNames.Transpose, new[] { dw }, new[] { Attr.Int("dim0", 0), Attr.Int("dim1", 1) }));
                    return;
                }

                var rank = _byId[a].Type.Rank;
                if (transB)
                {
                    // y = a·bᵀ → db = gᵀ·a.
                    var gt = Emit(OpNames.Transpose, new[] { g }, new[] { Attr.Int("dim0", rank - 2), Attr.Int("dim1", rank - 1) });
                    Contribute(b, Emit(OpNames.MatMul, new[] { gt, Saved(a) }, new[] { Attr.Bool("transB", false) }));
                }
                else
                {
                    // y = a·b → db = aᵀ·g.
                    var at = Emit(OpNames.Transpose, new[] { Saved(a) }, new[] { Attr.Int("dim0", rank - 2), Attr.Int("dim1", rank - 1) });
                    Contribute(b, Emit(OpNames.MatMul, new[] { at, g }, new[] { Attr.Bool("transB", false) }));
                }
            }
        }
    }
}
