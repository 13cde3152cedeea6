using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;

namespace GraphCompiler.Generator
{
    /// <summary>A source location as plain values, relative to the declaration that holds it: the file, the
    /// declaration's name (<paramref name="Anchor"/>: namespaces and enclosing types, dotted), and the span and line
    /// span counted from the start of that declaration (its first attribute). Nothing here changes when lines are
    /// inserted above the declaration, so a moved declaration's spec stays equal and no step reruns; the absolute
    /// position is found again in the current compilation only when a diagnostic is reported.</summary>
    public sealed record LocationInfo(string FilePath, string Anchor, TextSpan Span, LinePositionSpan LineSpan)
    {
        /// <summary>The referenced assembly whose manifest this location came from (its file is not in this
        /// compilation); null for a location in the current compilation's source.</summary>
        public string? Assembly { get; init; }

        public bool IsExternal => Assembly is not null;

        public static LocationInfo? From(SyntaxNode? node) => node is null ? null : From(node.GetLocation());

        public static LocationInfo? From(Location location)
        {
            var tree = location.SourceTree;
            if (tree is null)
            {
                return null;
            }

            var span = location.SourceSpan;
            var lines = location.GetLineSpan().Span;
            var declaration = tree.GetRoot().FindToken(span.Start).Parent?.AncestorsAndSelf().OfType<TypeDeclarationSyntax>().FirstOrDefault();
            if (declaration is null)
            {
                return new LocationInfo(tree.FilePath, "", span, lines);
            }

            var start = declaration.SpanStart;
            var startLine = tree.GetLineSpan(new TextSpan(start, 0)).StartLinePosition.Line;
            return new LocationInfo(
                tree.FilePath,
                AnchorOf(declaration),
                new TextSpan(span.Start - start, span.Length),
                new LinePositionSpan(
                    new LinePosition(lines.Start.Line - startLine, lines.Start.Character),
                    new LinePosition(lines.End.Line - startLine, lines.End.Character)));
        }

        /// <summary>A path-only location (no compilation to resolve the declaration in): file and relative span.</summary>
        public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

        /// <summary>The source location in <paramref name="compilation"/>'s tree with this path: the declaration named
        /// by <see cref="Anchor"/> found there, plus the relative span, if it still fits; otherwise path-only.</summary>
        public Location ToLocation(Compilation compilation)
        {
            if (IsExternal)
            {
                return Location.None; // another assembly's source; callers report at the user's line instead
            }

            foreach (var tree in compilation.SyntaxTrees)
            {
                if (tree.FilePath != FilePath)
                {
                    continue;
                }

                var start = 0;
                if (Anchor.Length > 0)
                {
                    var declaration = tree.GetRoot().DescendantNodes().OfType<TypeDeclarationSyntax>().FirstOrDefault(d => AnchorOf(d) == Anchor);
                    if (declaration is null)
                    {
                        continue;
                    }

                    start = declaration.SpanStart;
                }

                if (start + Span.End <= tree.Length)
                {
                    return Location.Create(tree, new TextSpan(start + Span.Start, Span.Length));
                }
            }

            return ToLocation();
        }

        /// <summary>"File.cs, EncoderLayer line 3": the file name (so generated text is identical across machines), the
        /// declaring class and the line within it, counting the declaration's first line (its first attribute) as 1.
        /// It does not move when lines are inserted above the declaration.</summary>
        public string ShortText
        {
            get
            {
                var file = System.IO.Path.GetFileName(FilePath);
                if (Anchor.Length == 0)
                {
                    return $"{file}:{LineSpan.Start.Line + 1}";
                }

                var dot = Anchor.LastIndexOf('.');
                return $"{file}, {Anchor.Substring(dot + 1)} line {LineSpan.Start.Line + 1}";
            }
        }

        private static string AnchorOf(TypeDeclarationSyntax declaration)
        {
            var names = new List<string>();
            for (SyntaxNode? node = declaration; node is not null; node = node.Parent)
            {
                switch (node)
                {
                    case TypeDeclarationSyntax type:
                        names.Add(type.Identifier.ValueText);
                        break;
                    case BaseNamespaceDeclarationSyntax ns:
                        names.Add(ns.Name.ToString());
                        break;
                }
            }

            names.Reverse();
            return string.Join(".", names);
        }
    }
}
