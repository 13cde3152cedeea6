using System;
using System.Collections.Generic;
using System.Linq;
using GraphCompiler.Generator.Diagnostics;
using GraphCompiler.Generator.Parsing;

namespace GraphCompiler.Generator
{
    /// <summary>A model ready to compile: a configuration-only model with its base's Forward and the hyper-parameter
    /// values it sets, or any other model as parsed; plus what went wrong while finding its base.</summary>
    public sealed record ResolvedModel(DeclarationSpec Spec, EquatableArray<DiagnosticInfo> Diagnostics);

    /// <summary>The blocks a model can apply: this compilation's and the referenced assemblies' (local ones win on a
    /// name clash), and the referenced manifests that could not be read.</summary>
    public sealed record BlockLibrary(EquatableArray<DeclarationSpec> Blocks, EquatableArray<BrokenManifest> Broken)
    {
        public static BlockLibrary Of(IEnumerable<DeclarationSpec> local, ReferencedDeclarations referenced) => new(
            referenced.Declarations.Where(d => d.Model is null).Concat(local).ToEquatableArray(),
            referenced.Broken);
    }

    /// <summary>Turns a configuration-only model into an ordinary one: follows its base chain (in this compilation or in
    /// referenced manifests) to the model with the Forward and applies every constructor assignment on the way, the
    /// most derived one winning. Pure; never throws.</summary>
    public static class ConfiguredModels
    {
        private const int MaxBaseDepth = 32;

        public static ResolvedModel Resolve(DeclarationSpec model, IReadOnlyList<DeclarationSpec> localModels, ReferencedDeclarations referenced)
        {
            try
            {
                return ResolveBase(model, localModels, referenced);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return Failed(model with { Forward = null }, DiagnosticDescriptors.InternalError, model.Location, model.Name, ex.GetType().Name + ": " + ex.Message);
            }
        }

        private static ResolvedModel ResolveBase(DeclarationSpec model, IReadOnlyList<DeclarationSpec> localModels, ReferencedDeclarations referenced)
        {
            if (model.Base is null || model.Forward is not null || model.Diagnostics.Count > 0)
            {
                return new ResolvedModel(model, EquatableArray<DiagnosticInfo>.Empty);
            }

            var byName = new Dictionary<string, DeclarationSpec>(StringComparer.Ordinal);
            foreach (var candidate in referenced.Declarations.Where(d => d.Model is not null).Concat(localModels))
            {
                byName[candidate.FullName] = candidate;
            }

            var values = new Dictionary<string, HyperAssignment>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal) { model.FullName };
            var current = model;
            while (current.Base is { } configured)
            {
                foreach (var assignment in configured.Assignments)
                {
                    if (!values.ContainsKey(assignment.Name))
                    {
                        values[assignment.Name] = assignment;
                    }
                }

                if (!seen.Add(configured.FullName) || seen.Count > MaxBaseDepth)
                {
                    return Failed(model, DiagnosticDescriptors.BadConfiguration, model.Base.Location, model.Name, $"its base models form a cycle through '{configured.Name}' (or a chain deeper than {MaxBaseDepth}); derive from a model that has a [Forward]");
                }

                var broken = referenced.Broken.FirstOrDefault(b => b.FullName == configured.FullName);
                if (broken is not null)
                {
                    return Failed(model, DiagnosticDescriptors.BadManifest, model.Base.Location, configured.Name, broken.Assembly, broken.Problem);
                }

                if (!byName.TryGetValue(configured.FullName, out var next))
                {
                    return Failed(model, DiagnosticDescriptors.BadConfiguration, model.Base.Location, model.Name,
                        $"its base model '{configured.Name}' has no GraphCompiler manifest; build the assembly that declares it with the GraphCompiler generator and reference it again");
                }

                if (next.Diagnostics.Count > 0)
                {
                    return Failed(model, DiagnosticDescriptors.BadDeclaration, model.Base.Location, model.Name, $"its base model '{next.Name}' has errors");
                }

                current = next;
            }

            if (current.Forward is null)
            {
                return Failed(model, DiagnosticDescriptors.BadConfiguration, model.Base.Location, model.Name, $"its base model '{current.Name}' has no [Forward]");
            }

            foreach (var assignment in values.Values)
            {
                if (!current.Hypers.Any(h => h.Name == assignment.Name))
                {
                    return Failed(model, DiagnosticDescriptors.UnknownHyper, assignment.Location, assignment.Name, current.Name, string.Join(", ", current.Hypers.Select(h => h.Name)));
                }
            }

            // The user's assignment is where a bad value was written, so a hyper-parameter it sets points there.
            var hypers = current.Hypers
                .Select(h => values.TryGetValue(h.Name, out var set) ? h with { Default = set.Value, Location = set.Location } : h)
                .ToEquatableArray();
            // Base stays set: diagnostics from the base's Forward then also point at this model (ModelCompiler).
            var resolved = model with { Hypers = hypers, Forward = current.Forward };
            return new ResolvedModel(resolved, EquatableArray<DiagnosticInfo>.Empty);
        }

        private static ResolvedModel Failed(DeclarationSpec model, Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, LocationInfo? location, params string[] args) =>
            new(model, EquatableArray.Of(DiagnosticInfo.Create(descriptor, location, args)));
    }
}
