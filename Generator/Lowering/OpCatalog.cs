using System;
using System.Linq;

namespace GraphCompiler.Generator
{
    /// <summary>The functions a Forward may call, from the op registry, for diagnostics.</summary>
    public static class OpCatalog
    {
        public static readonly string[] Names = OpRegistry.Dsl.Select(f => f.Name).OrderBy(n => n, StringComparer.Ordinal).ToArray();
    }
}
