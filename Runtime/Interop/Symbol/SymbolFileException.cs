namespace GraphCompiler.Runtime.Symbol;

/// <summary>A symbol file, params file or export that cannot be used as it is. The message names the file, the node
/// (id, op, scope) or tensor when there is one, and what is wrong.</summary>
public sealed class SymbolFileException : Exception
{
    public SymbolFileException(string file, string? node, string problem, Exception? inner = null)
        : base(file + ": " + (node is null ? "" : node + ": ") + problem, inner)
    {
        File = file;
        Node = node;
        Problem = problem;
    }

    /// <summary>The file (or, for a module's embedded graph, the source name) the problem is in.</summary>
    public string File { get; }

    /// <summary>The node or tensor the problem is at, e.g. "node 12 (linear, scope 'encoder.layer.0')"; null for the
    /// file as a whole.</summary>
    public string? Node { get; }

    public string Problem { get; }
}
