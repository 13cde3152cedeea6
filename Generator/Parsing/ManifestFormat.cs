using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis.Text;

namespace GraphCompiler.Generator.Parsing
{
    /// <summary>The payload of a <c>[assembly: DeclarationManifest]</c>: a <see cref="DeclarationSpec"/> as a compact,
    /// culture-invariant token stream. Strings are length-prefixed (<c>5:Heads</c>), so no escaping is needed; numbers
    /// use the round-trip format; <c>~</c> is null; a list is its count then its items. Locations keep only the file
    /// name and the declaration-relative span, which is all a referencing project can use of them; those two strings are
    /// written once and then referred to as <c>^index</c>.</summary>
    public static class ManifestFormat
    {
        /// <summary>Bump when the token layout changes; a reader refuses other versions (GC0012).</summary>
        public const int Version = 1;

        public static string Write(DeclarationSpec spec)
        {
            var writer = new Writer();
            writer.Declaration(spec);
            return writer.ToString();
        }

        /// <summary>The declaration in <paramref name="payload"/>, its locations marked as coming from
        /// <paramref name="assembly"/>. Throws <see cref="FormatException"/> when the payload is not well formed.</summary>
        public static DeclarationSpec Read(string payload, string assembly) => new Reader(payload, assembly).Declaration();

        private sealed class Writer
        {
            private readonly StringBuilder _text = new();
            private readonly Dictionary<string, int> _interned = new(StringComparer.Ordinal);

            public override string ToString() => _text.ToString();

            public void Declaration(DeclarationSpec spec)
            {
                Str(spec.Name);
                Str(spec.Namespace);
                Str(spec.FullName);
                Str(spec.FileName);
                Loc(spec.Location);
                Bool(spec.IsAbstract);
                Optional(spec.Model, Model);
                List(spec.Hypers, h =>
                {
                    Str(h.Name);
                    Int((int)h.Kind);
                    OptionalNumber(h.Default);
                    Loc(h.Location);
                });
                Optional(spec.Forward, f =>
                {
                    List(f.Inputs, i =>
                    {
                        Str(i.Name);
                        Int(i.DType is null ? -1 : (int)i.DType.Value);
                        List(i.Dims, Str);
                        Loc(i.Location);
                    });
                    List(f.Body, s =>
                    {
                        Int((int)s.Kind);
                        OptionalStr(s.Target);
                        Expr(s.Value);
                        Loc(s.Location);
                    });
                    Loc(f.Location);
                });
            }

            private void Model(ModelInfo model)
            {
                Str(model.ModelName);
                List(model.Shapes, s =>
                {
                    Int(s.Batch);
                    List(s.SeqLens, Int);
                    Loc(s.Location);
                });
                Loc(model.ShapesLocation);
                Optional(model.Quantize, q =>
                {
                    List(q.Exclude, Str);
                    Loc(q.Location);
                });
            }

            private void Expr(DslExpr expr)
            {
                switch (expr)
                {
                    case RefExpr r: Token("R"); Str(r.Name); break;
                    case HyperExpr h: Token("H"); Str(h.Name); break;
                    case NumberExpr n: Token("N"); Number(n.Value); Bool(n.IsInteger); break;
                    case StringExpr s: Token("S"); Str(s.Value); break;
                    case BoolExpr b: Token("B"); Bool(b.Value); break;
                    case SymDimExpr d: Token("D"); Str(d.Name); break;
                    case EnumExpr e: Token("E"); Str(e.Type); Str(e.Member); break;
                    case UnaryExpr u: Token("U"); Str(u.Operator); Expr(u.Operand); break;
                    case BinaryExpr b: Token("X"); Str(b.Operator); Expr(b.Left); Expr(b.Right); break;
                    case ArrayExpr a: Token("A"); List(a.Items, Expr); break;
                    case TupleExpr t: Token("T"); List(t.Items, Expr); break;
                    case CallExpr c: Token("C"); Str(c.Op); List(c.Args, NamedArg); break;
                    case NewBlockExpr nb: Token("K"); Str(nb.BlockFullName); List(nb.Initializers, NamedArg); OptionalStr(nb.DeclaringAssembly); break;
                    default: throw new NotSupportedException(expr.GetType().Name);
                }

                Loc(expr.Location);
            }

            private void NamedArg(NamedArg arg)
            {
                Str(arg.Name);
                Expr(arg.Value);
            }

            private void Loc(LocationInfo? location)
            {
                if (location is null)
                {
                    Token("~");
                    return;
                }

                Interned(System.IO.Path.GetFileName(location.FilePath));
                Interned(location.Anchor);
                Int(location.Span.Start);
                Int(location.Span.Length);
                Int(location.LineSpan.Start.Line);
                Int(location.LineSpan.Start.Character);
                Int(location.LineSpan.End.Line);
                Int(location.LineSpan.End.Character);
            }

            private void Optional<T>(T? value, Action<T> write)
                where T : class
            {
                if (value is null)
                {
                    Token("~");
                }
                else
                {
                    Token("+");
                    write(value);
                }
            }

            private void OptionalStr(string? value)
            {
                if (value is null)
                {
                    Token("~");
                }
                else
                {
                    Str(value);
                }
            }

            private void OptionalNumber(double? value)
            {
                if (value is null)
                {
                    Token("~");
                }
                else
                {
                    Number(value.Value);
                }
            }

            private void List<T>(EquatableArray<T> items, Action<T> write)
            {
                Int(items.Count);
                foreach (var item in items)
                {
                    write(item);
                }
            }

            private void Str(string value) => Token(value.Length.ToString(CultureInfo.InvariantCulture) + ":" + value);

            /// <summary>A string that repeats (a location's file and declaration): written once, then as <c>^index</c>.</summary>
            private void Interned(string value)
            {
                if (_interned.TryGetValue(value, out var index))
                {
                    Token("^" + index.ToString(CultureInfo.InvariantCulture));
                    return;
                }

                _interned[value] = _interned.Count;
                Str(value);
            }

            private void Int(int value) => Token(value.ToString(CultureInfo.InvariantCulture));

            private void Number(double value) => Token(value.ToString("R", CultureInfo.InvariantCulture));

            private void Bool(bool value) => Token(value ? "1" : "0");

            private void Token(string token)
            {
                if (_text.Length > 0)
                {
                    _text.Append(' ');
                }

                _text.Append(token);
            }
        }

        private sealed class Reader
        {
            private const int MaxDepth = 256;
            private readonly string _text;
            private readonly string _assembly;
            private readonly List<string> _interned = new();
            private int _position;
            private int _depth;

            public Reader(string text, string assembly)
            {
                _text = text;
                _assembly = assembly;
            }

            public DeclarationSpec Declaration()
            {
                var name = Str();
                var ns = Str();
                var fullName = Str();
                var fileName = Str();
                var location = Loc();
                var isAbstract = Bool();
                var model = Optional(Model);
                var hypers = List(() => new HyperSpec(Str(), Enum<HyperKind>(Int()), OptionalNumber(), Loc()));
                var forward = Optional(() => new ForwardSpec(
                    List(() => new InputSpec(Str(), Int() is var d && d >= 0 ? Enum<DTypeSpec>(d) : null, List(Str), Loc())),
                    List(() => new StatementSpec(Enum<StatementKind>(Int()), OptionalStr(), Expr(), Loc())),
                    Loc()));
                if (_position < _text.Length)
                {
                    throw new FormatException($"unexpected text at offset {_position}");
                }

                return new DeclarationSpec(name, ns, fullName, fileName, location, model, hypers, forward, EquatableArray<Diagnostics.DiagnosticInfo>.Empty, IsAbstract: isAbstract);
            }

            private ModelInfo Model() => new(
                Str(),
                List(() => new StaticShapesInfo(Int(), List(Int), Loc())),
                Loc(),
                Optional(() => new QuantizeInfo(List(Str), Loc())));

            private DslExpr Expr()
            {
                if (++_depth > MaxDepth)
                {
                    throw new FormatException("expressions nest too deeply");
                }

                var kind = Token();
                DslExpr expr = kind switch
                {
                    "R" => new RefExpr(Str(), null),
                    "H" => new HyperExpr(Str(), null),
                    "N" => new NumberExpr(Number(), Bool(), null),
                    "S" => new StringExpr(Str(), null),
                    "B" => new BoolExpr(Bool(), null),
                    "D" => new SymDimExpr(Str(), null),
                    "E" => new EnumExpr(Str(), Str(), null),
                    "U" => new UnaryExpr(Str(), Expr(), null),
                    "X" => new BinaryExpr(Str(), Expr(), Expr(), null),
                    "A" => new ArrayExpr(List(Expr), null),
                    "T" => new TupleExpr(List(Expr), null),
                    "C" => new CallExpr(Str(), List(NamedArg), null),
                    "K" => new NewBlockExpr(Str(), List(NamedArg), null, OptionalStr() ?? _assembly),
                    _ => throw new FormatException($"unknown expression kind '{kind}'"),
                };
                _depth--;
                return expr with { Location = Loc() };
            }

            private NamedArg NamedArg() => new(Str(), Expr());

            private LocationInfo? Loc()
            {
                if (Peek() == '~')
                {
                    Token();
                    return null;
                }

                var file = Interned();
                var anchor = Interned();
                var span = new TextSpan(NonNegative(), NonNegative());
                var lines = new LinePositionSpan(new LinePosition(NonNegative(), NonNegative()), new LinePosition(NonNegative(), NonNegative()));
                return new LocationInfo(file, anchor, span, lines) { Assembly = _assembly };
            }

            private T? Optional<T>(Func<T> read)
                where T : class
            {
                var marker = Token();
                return marker switch
                {
                    "~" => null,
                    "+" => read(),
                    _ => throw new FormatException($"expected '~' or '+', got '{marker}'"),
                };
            }

            private string? OptionalStr()
            {
                if (Peek() == '~')
                {
                    Token();
                    return null;
                }

                return Str();
            }

            private double? OptionalNumber()
            {
                if (Peek() == '~')
                {
                    Token();
                    return null;
                }

                return Number();
            }

            private string Interned()
            {
                if (Peek() != '^')
                {
                    var value = Str();
                    _interned.Add(value);
                    return value;
                }

                var token = Token();
                return int.TryParse(token.Substring(1), NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index < _interned.Count
                    ? _interned[index]
                    : throw new FormatException($"'{token}' refers to no earlier string");
            }

            private EquatableArray<T> List<T>(Func<T> read)
            {
                var count = NonNegative();
                if (count > _text.Length)
                {
                    throw new FormatException($"list of {count} items is longer than the payload");
                }

                var items = new List<T>(count);
                for (var i = 0; i < count; i++)
                {
                    items.Add(read());
                }

                return items.ToEquatableArray();
            }

            private static T Enum<T>(int value)
                where T : struct, Enum =>
                System.Enum.IsDefined(typeof(T), value) ? (T)(object)value : throw new FormatException($"{value} is not a {typeof(T).Name}");

            private string Str()
            {
                SkipSpace();
                var colon = _text.IndexOf(':', _position);
                if (colon < 0 || !int.TryParse(_text.Substring(_position, colon - _position), NumberStyles.None, CultureInfo.InvariantCulture, out var length)
                    || length > _text.Length - colon - 1)
                {
                    throw new FormatException($"expected a string at offset {_position}");
                }

                _position = colon + 1 + length;
                return _text.Substring(colon + 1, length);
            }

            private int Int() => int.TryParse(Token(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : throw new FormatException($"expected an integer before offset {_position}");

            private int NonNegative() => Int() is var value && value >= 0 ? value : throw new FormatException($"expected a non-negative integer before offset {_position}");

            private double Number() => double.TryParse(Token(), NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value : throw new FormatException($"expected a number before offset {_position}");

            private bool Bool() => Token() switch
            {
                "0" => false,
                "1" => true,
                var other => throw new FormatException($"expected 0 or 1, got '{other}'"),
            };

            private char Peek()
            {
                SkipSpace();
                return _position < _text.Length ? _text[_position] : '\0';
            }

            private string Token()
            {
                SkipSpace();
                var end = _text.IndexOf(' ', _position);
                if (end < 0)
                {
                    end = _text.Length;
                }

                if (end == _position)
                {
                    throw new FormatException("the payload ends early");
                }

                var token = _text.Substring(_position, end - _position);
                _position = end;
                return token;
            }

            private void SkipSpace()
            {
                if (_position < _text.Length && _text[_position] == ' ')
                {
                    _position++;
                }
            }
        }
    }
}
