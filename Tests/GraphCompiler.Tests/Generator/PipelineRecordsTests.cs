using System.Reflection;
using GraphCompiler.Generator;
using GraphCompiler.Generator.Parsing;
using Microsoft.CodeAnalysis;
using Xunit;

namespace GraphCompiler.Tests.Generator;

/// <summary>The values flowing through the incremental pipeline must not hold Roslyn objects (symbols, syntax,
/// locations, semantic models, compilations): they would root whole compilations and defeat caching. Walks every
/// type reachable from the pipeline's records, like System.Text.Json's generator test.</summary>
public class PipelineRecordsTests
{
    private static readonly Type[] Forbidden =
    {
        typeof(ISymbol), typeof(SyntaxNode), typeof(SyntaxTree), typeof(SyntaxToken), typeof(SyntaxReference),
        typeof(Location), typeof(SemanticModel), typeof(Compilation), typeof(AttributeData), typeof(Diagnostic),
    };

    /// <summary>Reachable types and, for each forbidden one, the path that reaches it.</summary>
    private static (HashSet<Type> Reached, List<string> Violations) Walk(params Type[] roots)
    {
        var reached = new HashSet<Type>();
        var violations = new List<string>();
        var queue = new Queue<(Type Type, string Path)>(roots.Select(r => (r, r.Name)));
        while (queue.Count > 0)
        {
            var (type, path) = queue.Dequeue();
            if (type.IsByRef || type.IsPointer)
            {
                type = type.GetElementType()!;
            }

            if (!reached.Add(type))
            {
                continue;
            }

            if (Forbidden.Any(f => f.IsAssignableFrom(type)))
            {
                violations.Add($"{path}: {type.FullName}");
                continue;
            }

            if (type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(object))
            {
                continue;
            }

            void Enqueue(Type t, string p) => queue.Enqueue((t, p));

            if (type.IsArray)
            {
                Enqueue(type.GetElementType()!, path + "[]");
                continue;
            }

            foreach (var arg in type.IsGenericType ? type.GetGenericArguments() : Type.EmptyTypes)
            {
                Enqueue(arg, $"{path}<{arg.Name}>");
            }

            // Framework containers (ImmutableArray<T>, Nullable<T>, ...) are judged by their type arguments only.
            if (type.Namespace?.StartsWith("System", StringComparison.Ordinal) == true)
            {
                continue;
            }

            const BindingFlags instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
            for (var t = type; t is not null && t != typeof(object) && t != typeof(ValueType); t = t.BaseType)
            {
                foreach (var field in t.GetFields(instance))
                {
                    Enqueue(field.FieldType, $"{path}.{field.Name}");
                }

                foreach (var property in t.GetProperties(instance))
                {
                    Enqueue(property.PropertyType, $"{path}.{property.Name}");
                }
            }

            // Polymorphic records: every derived type in the same assembly can be stored where the base is declared.
            if (type.IsAbstract || !type.IsSealed)
            {
                foreach (var derived in type.Assembly.GetTypes().Where(d => d != type && type.IsAssignableFrom(d)))
                {
                    Enqueue(derived, $"{path} as {derived.Name}");
                }
            }
        }

        return (reached, violations);
    }

    [Fact]
    public void PipelineRecordsHoldNoRoslynObjects()
    {
        var (reached, violations) = Walk(typeof(DeclarationSpec), typeof(CompiledModel), typeof(ResolvedModel), typeof(BlockLibrary), typeof(ReferencedDeclarations), typeof(ManifestEntry));

        Assert.Empty(violations);

        // The walk really went through the records (so an empty result means something).
        foreach (var expected in new[] { typeof(LocationInfo), typeof(NewBlockExpr), typeof(CallExpr), typeof(NamedArg), typeof(StatementSpec), typeof(HyperSpec), typeof(GraphCompiler.Generator.Diagnostics.DiagnosticInfo) })
        {
            Assert.Contains(expected, reached);
        }
    }

    [Fact]
    public void PipelineRecordsCompareByValue()
    {
        var (reached, _) = Walk(typeof(DeclarationSpec), typeof(CompiledModel), typeof(ResolvedModel), typeof(BlockLibrary), typeof(ReferencedDeclarations), typeof(ManifestEntry));
        var generatorTypes = reached.Where(t => t.Assembly == typeof(DeclarationSpec).Assembly && !t.IsEnum && !t.IsInterface).ToList();

        Assert.NotEmpty(generatorTypes);
        foreach (var type in generatorTypes)
        {
            var equals = type.GetMethod("Equals", new[] { type.IsGenericTypeDefinition ? type : type });
            Assert.True(equals is not null && equals.DeclaringType == type, $"{type} has no value Equals({type.Name})");
        }
    }

    private sealed record Leaky(string Name, EquatableArray<Holder> Items);

    private abstract record Holder;

    private sealed record LocationHolder(Location Where) : Holder;

    [Fact]
    public void TheWalkFindsRoslynObjectsInDerivedRecordsAndCollections()
    {
        var (_, violations) = Walk(typeof(Leaky));

        var violation = Assert.Single(violations, v => v.Contains("LocationHolder", StringComparison.Ordinal));
        Assert.Contains(typeof(Location).FullName!, violation);
    }
}
