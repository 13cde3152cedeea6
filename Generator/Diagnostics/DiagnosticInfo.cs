using System.Linq;
using Microsoft.CodeAnalysis;

namespace GraphCompiler.Generator.Diagnostics
{
    /// <summary>A diagnostic as plain values (descriptor ID, location, message arguments) for the cached pipeline.</summary>
    public sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> Args, EquatableArray<LocationInfo> AdditionalLocations = default)
    {
        public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, LocationInfo? location, params string[] args) =>
            new(descriptor.Id, location, args.ToEquatableArray());

        /// <summary>The same diagnostic seen from where the user's code applied the declaration it is in: the context
        /// appended to the message's last argument, the location moved to <paramref name="location"/> and/or an
        /// additional location added.</summary>
        public DiagnosticInfo WithContext(string context, LocationInfo? location, LocationInfo? additional)
        {
            var args = Args.ToList();
            if (args.Count == 0)
            {
                args.Add("");
            }

            args[args.Count - 1] += context;
            var extra = additional is null ? AdditionalLocations : AdditionalLocations.Concat(new[] { additional }).ToEquatableArray();
            return this with { Location = location, Args = args.ToEquatableArray(), AdditionalLocations = extra };
        }

        public Diagnostic ToDiagnostic() =>
            Diagnostic.Create(DiagnosticDescriptors.ById(Id), Location?.ToLocation(), AdditionalLocations.Select(l => l.ToLocation()), Args.Cast<object>().ToArray());

        /// <summary>The diagnostic with its location in <paramref name="compilation"/>'s syntax tree for the same file.</summary>
        public Diagnostic ToDiagnostic(Compilation compilation) =>
            Diagnostic.Create(
                DiagnosticDescriptors.ById(Id),
                Location?.ToLocation(compilation),
                AdditionalLocations.Select(l => l.ToLocation(compilation)).Where(l => l != Microsoft.CodeAnalysis.Location.None),
                Args.Cast<object>().ToArray());
    }

    /// <summary>Thrown inside parsing/lowering to abandon one declaration with a located diagnostic.</summary>
    public sealed class CompileErrorException : System.Exception
    {
        public CompileErrorException(DiagnosticInfo diagnostic)
            : base(diagnostic.Id) => Diagnostic = diagnostic;

        public DiagnosticInfo Diagnostic { get; }
    }
}
