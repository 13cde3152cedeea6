using Microsoft.CodeAnalysis;

namespace GraphCompiler.Generator.Diagnostics
{
    /// <summary>Every diagnostic the generator reports. IDs are stable; each has a test that triggers it.</summary>
    public static class DiagnosticDescriptors
    {
        public const string Category = "GraphCompiler";

        public static readonly DiagnosticDescriptor NotDsl = Error(
            "GC0001", "Construct not allowed in a Forward",
            "'{0}' is not part of the Forward language: {1}");

        public static readonly DiagnosticDescriptor UnknownOp = Error(
            "GC0002", "Unknown op",
            "'{0}' is not a GraphCompiler op; a Forward may call only GraphCompiler.Ops ({1})");

        public static readonly DiagnosticDescriptor ShapeMismatch = Error(
            "GC0003", "Shape mismatch",
            "{0}: {1}");

        public static readonly DiagnosticDescriptor MissingHyper = Error(
            "GC0004", "Missing hyper-parameter",
            "Hyper-parameter '{0}' of '{1}' has no value: {2}");

        public static readonly DiagnosticDescriptor DuplicateParameter = Error(
            "GC0005", "Duplicate parameter name",
            "Parameter '{0}' is declared twice in model '{1}': give each Linear/LayerNorm/Embedding/Param its own name or prefix");

        public static readonly DiagnosticDescriptor ConstraintViolated = Error(
            "GC0006", "Static shape or hyper-parameter constraint violated",
            "{0}");

        public static readonly DiagnosticDescriptor BadDeclaration = Error(
            "GC0007", "Malformed block or model declaration",
            "'{0}' cannot be compiled: {1}");

        public static readonly DiagnosticDescriptor BadInput = Error(
            "GC0008", "Malformed model input",
            "Input '{0}' of model '{1}': {2}");

        public static readonly DiagnosticDescriptor UnknownBlock = Error(
            "GC0009", "Unknown block",
            "'{0}' cannot be applied as a block: {1}");

        public static readonly DiagnosticDescriptor UndefinedValue = Error(
            "GC0010", "Undefined or mistyped value",
            "{0}");

        public static readonly DiagnosticDescriptor BadQuantization = Error(
            "GC0011", "Malformed [Quantize] option",
            "[Quantize] on '{0}': {1}");

        public static readonly DiagnosticDescriptor BadManifest = Error(
            "GC0012", "Unreadable declaration manifest",
            "'{0}' from assembly '{1}' cannot be used: {2}; rebuild '{1}' with the same GraphCompiler version as this project (or update this project's GraphCompiler package to the one '{1}' was built with)");

        public static readonly DiagnosticDescriptor UnknownHyper = Error(
            "GC0013", "Unknown hyper-parameter",
            "'{0}' is not a [Hyper] of '{1}'; its hyper-parameters are: {2}");

        public static readonly DiagnosticDescriptor BadConfiguration = Error(
            "GC0014", "Malformed configuration-only model",
            "Configuration-only model '{0}': {1}");

        public static readonly DiagnosticDescriptor InternalError = Error(
            "GC9999", "Internal generator error",
            "GraphCompiler failed on '{0}': {1}. This is a bug in the generator; the declaration was not compiled.");

        private static DiagnosticDescriptor Error(string id, string title, string message) =>
            new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

        /// <summary>Lookup by ID, for turning <see cref="DiagnosticInfo"/> back into a diagnostic.</summary>
        public static DiagnosticDescriptor ById(string id) => id switch
        {
            "GC0001" => NotDsl,
            "GC0002" => UnknownOp,
            "GC0003" => ShapeMismatch,
            "GC0004" => MissingHyper,
            "GC0005" => DuplicateParameter,
            "GC0006" => ConstraintViolated,
            "GC0007" => BadDeclaration,
            "GC0008" => BadInput,
            "GC0009" => UnknownBlock,
            "GC0010" => UndefinedValue,
            "GC0011" => BadQuantization,
            "GC0012" => BadManifest,
            "GC0013" => UnknownHyper,
            "GC0014" => BadConfiguration,
            _ => InternalError,
        };
    }
}
