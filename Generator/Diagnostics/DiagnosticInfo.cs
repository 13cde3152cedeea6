using System.Linq;
using Microsoft.CodeAnalysis;

namespace GraphCompiler.Generator.Diagnostics
{
    /// <summary>A diagnostic as plain values (descriptor ID, location, message arguments) for the cached pipeline.</summary>
    public sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> Args)
    {
        public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, LocationInfo? location, params string[] args) =>
            new(descriptor.Id, location, args.ToEquatableArray());

        public Diagnostic ToDiagnostic() =>
            Diagnostic.Create(DiagnosticDescriptors.ById(Id), Location?.ToLocation(), Args.Cast<object>().ToArray());

        /// <summary>The diagnostic with its location in <paramref name="compilation"/>'s syntax tree for the same file.</summary>
        public Diagnostic ToDiagnostic(Compilation compilation) =>
            Diagnostic.Create(DiagnosticDescriptors.ById(Id), Location?.ToLocation(compilation), Args.Cast<object>().ToArray());
    }

    /// <summary>Thrown inside parsing/lowering to abandon one declaration with a located diagnostic.</summary>
    public sealed class CompileErrorException : System.Exception
    {
        public CompileErrorException(DiagnosticInfo diagnostic)
            : base(diagnostic.Id) => Diagnostic = diagnostic;

        public DiagnosticInfo Diagnostic { get; }
    }
}
