using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace GraphCompiler.Generator
{
    /// <summary>A source location as plain values (path + spans), rebuilt into a <see cref="Location"/> only when a
    /// diagnostic is reported, so no syntax tree is held by the pipeline.</summary>
    public sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
    {
        public static LocationInfo? From(SyntaxNode? node) => node is null ? null : From(node.GetLocation());

        public static LocationInfo? From(Location location) =>
            location.SourceTree is null ? null : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);

        public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

        /// <summary>A source location in the tree of <paramref name="compilation"/> with this path, if the span still
        /// fits it; otherwise the path-only location.</summary>
        public Location ToLocation(Compilation compilation)
        {
            foreach (var tree in compilation.SyntaxTrees)
            {
                if (tree.FilePath == FilePath && Span.End <= tree.Length)
                {
                    return Location.Create(tree, Span);
                }
            }

            return ToLocation();
        }

        /// <summary>"File.cs:12": file name only, so generated text is identical across machines.</summary>
        public string ShortText => $"{System.IO.Path.GetFileName(FilePath)}:{LineSpan.Start.Line + 1}";
    }
}
