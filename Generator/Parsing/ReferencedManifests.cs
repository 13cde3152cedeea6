using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;

namespace GraphCompiler.Generator.Parsing
{
    /// <summary>One <c>[assembly: DeclarationManifest]</c> of a referenced assembly, undecoded.</summary>
    public sealed record ManifestEntry(string Assembly, string FullName, int FormatVersion, string Payload);

    /// <summary>A manifest this generator cannot use, kept so that applying its declaration reports why (GC0012).</summary>
    public sealed record BrokenManifest(string Assembly, string FullName, string Problem);

    /// <summary>The declarations of every referenced assembly, decoded, and the manifests that could not be.</summary>
    public sealed record ReferencedDeclarations(EquatableArray<DeclarationSpec> Declarations, EquatableArray<BrokenManifest> Broken)
    {
        public static readonly ReferencedDeclarations None = new(EquatableArray<DeclarationSpec>.Empty, EquatableArray<BrokenManifest>.Empty);
    }

    /// <summary>Reads the declaration manifests of referenced assemblies (the only code here that touches symbols) and
    /// decodes them (pure).</summary>
    public static class ReferencedManifests
    {
        public const string ManifestAttribute = "GraphCompiler.DeclarationManifestAttribute";

        /// <summary>Manifests of the assemblies that reference the DSL assembly, in reference order; only they can hold
        /// one, so the framework's hundreds of assemblies are skipped by name.</summary>
        public static EquatableArray<ManifestEntry> Read(Compilation compilation, CancellationToken cancellationToken)
        {
            try
            {
                return ReadAll(compilation, cancellationToken);
            }
            catch (System.Exception ex) when (ex is not System.OperationCanceledException)
            {
                // A reference the compiler cannot read is the compiler's error to report; without manifests, applying a
                // block from it is GC0009 on the user's line.
                return EquatableArray<ManifestEntry>.Empty;
            }
        }

        private static EquatableArray<ManifestEntry> ReadAll(Compilation compilation, CancellationToken cancellationToken)
        {
            var attribute = compilation.GetTypeByMetadataName(ManifestAttribute);
            if (attribute is null)
            {
                return EquatableArray<ManifestEntry>.Empty;
            }

            var dsl = attribute.ContainingAssembly.Identity.Name;
            var entries = new List<ManifestEntry>();
            foreach (var assembly in compilation.SourceModule.ReferencedAssemblySymbols)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!assembly.Modules.Any(m => m.ReferencedAssemblies.Any(r => r.Name == dsl)))
                {
                    continue;
                }

                foreach (var data in assembly.GetAttributes())
                {
                    if (!SymbolEqualityComparer.Default.Equals(data.AttributeClass, attribute) || data.ConstructorArguments.Length != 3)
                    {
                        continue;
                    }

                    var args = data.ConstructorArguments;
                    entries.Add(new ManifestEntry(
                        assembly.Identity.Name,
                        args[0].Value as string ?? "",
                        args[1].Value is int version ? version : -1,
                        args[2].Value as string ?? ""));
                }
            }

            return entries.ToEquatableArray();
        }

        /// <summary>Decodes every entry; an unknown format version or an undecodable payload becomes a
        /// <see cref="BrokenManifest"/> instead of an exception.</summary>
        public static ReferencedDeclarations Decode(EquatableArray<ManifestEntry> entries, CancellationToken cancellationToken)
        {
            var declarations = new List<DeclarationSpec>();
            var broken = new List<BrokenManifest>();
            foreach (var entry in entries)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (entry.FormatVersion != ManifestFormat.Version)
                {
                    broken.Add(new BrokenManifest(entry.Assembly, entry.FullName,
                        $"its manifest has format version {entry.FormatVersion}, this generator reads version {ManifestFormat.Version}"));
                    continue;
                }

                try
                {
                    var spec = ManifestFormat.Read(entry.Payload, entry.Assembly);
                    if (spec.FullName != entry.FullName)
                    {
                        broken.Add(new BrokenManifest(entry.Assembly, entry.FullName, $"its manifest describes '{spec.FullName}' instead"));
                        continue;
                    }

                    declarations.Add(spec);
                }
                catch (System.Exception ex) when (ex is not System.OperationCanceledException)
                {
                    broken.Add(new BrokenManifest(entry.Assembly, entry.FullName, "its manifest cannot be decoded (" + ex.Message + ")"));
                }
            }

            return new ReferencedDeclarations(declarations.ToEquatableArray(), broken.ToEquatableArray());
        }
    }
}
