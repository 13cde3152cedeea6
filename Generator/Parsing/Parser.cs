using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using System.Threading;
using GraphCompiler.Generator.Diagnostics;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;

namespace GraphCompiler.Generator.Parsing
{
    /// <summary>The only code that touches Roslyn symbols and syntax: turns a [Block]/[Model] class into a
    /// <see cref="DeclarationSpec"/>. Anything outside the Forward language becomes a diagnostic on its syntax.</summary>
    public static class Parser
    {
        public const string BlockAttribute = "GraphCompiler.BlockAttribute";
        public const string ModelAttribute = "GraphCompiler.ModelAttribute";
        private const string HyperAttribute = "GraphCompiler.HyperAttribute";
        private const string ForwardAttribute = "GraphCompiler.ForwardAttribute";
        private const string StaticShapesAttribute = "GraphCompiler.StaticShapesAttribute";
        private const string InputAttribute = "GraphCompiler.InputAttribute";
        private const string QuantizeAttribute = "GraphCompiler.QuantizeAttribute";
        private const string OpsType = "GraphCompiler.Ops";
        private const string ExprType = "GraphCompiler.Expr";

        public static DeclarationSpec Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
        {
            var symbol = (INamedTypeSymbol)context.TargetSymbol;
            var syntax = (ClassDeclarationSyntax)context.TargetNode;
            var diagnostics = new List<DiagnosticInfo>();
            var location = LocationInfo.From(syntax.Identifier.GetLocation());
            var fileName = System.IO.Path.GetFileName(syntax.SyntaxTree.FilePath);
            var ns = symbol.ContainingNamespace.IsGlobalNamespace ? "" : symbol.ContainingNamespace.ToDisplayString();
            var fullName = symbol.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat).Replace("global::", "");
            try
            {
                var model = ReadModel(symbol, diagnostics);
                var hypers = ReadHypers(symbol, context.SemanticModel, diagnostics, cancellationToken);
                var configured = model is null ? null : ReadBaseModel(symbol, syntax, context.SemanticModel, hypers, diagnostics, cancellationToken);
                var forward = configured is null ? ReadForward(symbol, context.SemanticModel, model is not null, diagnostics, cancellationToken) : null;
                if (symbol.ContainingType is not null)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadDeclaration, location, symbol.Name, "declare it as a top-level class, not nested in another type"));
                }

                return new DeclarationSpec(symbol.Name, ns, fullName, fileName, location, model, hypers.ToEquatableArray(), forward, diagnostics.ToEquatableArray(), configured, model is not null && symbol.IsAbstract);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, location, symbol.Name, ex.GetType().Name + ": " + ex.Message));
                return new DeclarationSpec(symbol.Name, ns, fullName, fileName, location, null, EquatableArray<HyperSpec>.Empty, null, diagnostics.ToEquatableArray());
            }
        }

        private static ModelInfo? ReadModel(INamedTypeSymbol symbol, List<DiagnosticInfo> diagnostics)
        {
            var modelAttr = symbol.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == ModelAttribute);
            if (modelAttr is null)
            {
                return null;
            }

            var attrLocation = LocationInfo.From(modelAttr.ApplicationSyntaxReference?.GetSyntax());
            var name = modelAttr.ConstructorArguments.Length == 1 ? modelAttr.ConstructorArguments[0].Value as string : null;
            if (string.IsNullOrWhiteSpace(name))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadDeclaration, attrLocation, symbol.Name, "[Model] needs a non-empty name, e.g. [Model(\"bert_12_768_12\")]"));
                name = symbol.Name;
            }

            var shapesAttrs = symbol.GetAttributes().Where(a => a.AttributeClass?.ToDisplayString() == StaticShapesAttribute).ToList();
            if (shapesAttrs.Count == 0 && symbol.IsAbstract)
            {
                // A base for configuration-only models: each of them declares its own buckets.
                return new ModelInfo(name!, EquatableArray<StaticShapesInfo>.Empty, attrLocation, ReadQuantize(symbol, diagnostics));
            }

            if (shapesAttrs.Count == 0)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadDeclaration, attrLocation, symbol.Name, "a [Model] needs [StaticShapes(Batch = ..., SeqLens = new[] { ... })]"));
                return new ModelInfo(name!, EquatableArray<StaticShapesInfo>.Empty, attrLocation);
            }

            var shapes = shapesAttrs.Select(ReadStaticShapes).ToImmutableArray();
            return new ModelInfo(name!, shapes.ToEquatableArray(), shapes[0].Location, ReadQuantize(symbol, diagnostics));
        }

        private static StaticShapesInfo ReadStaticShapes(AttributeData attribute)
        {
            var batch = 0;
            var seqLens = ImmutableArray<int>.Empty;
            foreach (var named in attribute.NamedArguments)
            {
                if (named.Key == "Batch" && named.Value.Value is int b)
                {
                    batch = b;
                }
                else if (named.Key == "SeqLens" && !named.Value.IsNull && named.Value.Kind == TypedConstantKind.Array)
                {
                    seqLens = named.Value.Values.Select(v => v.Value is int i ? i : 0).ToImmutableArray();
                }
            }

            return new StaticShapesInfo(batch, seqLens.ToEquatableArray(), LocationInfo.From(attribute.ApplicationSyntaxReference?.GetSyntax()));
        }

        /// <summary>[Quantize(Exclude = ...)]; empty and repeated prefixes are reported here, prefixes that match no
        /// quantizable GEMM once the graph exists (ModelCompiler).</summary>
        private static QuantizeInfo? ReadQuantize(INamedTypeSymbol symbol, List<DiagnosticInfo> diagnostics)
        {
            var attr = symbol.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == QuantizeAttribute);
            if (attr is null)
            {
                return null;
            }

            var location = LocationInfo.From(attr.ApplicationSyntaxReference?.GetSyntax());
            var exclude = new List<string>();
            foreach (var named in attr.NamedArguments)
            {
                if (named.Key == "Exclude" && !named.Value.IsNull && named.Value.Kind == TypedConstantKind.Array)
                {
                    foreach (var item in named.Value.Values)
                    {
                        var prefix = item.Value as string;
                        if (string.IsNullOrWhiteSpace(prefix))
                        {
                            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadQuantization, location, symbol.Name, "an Exclude prefix is empty; give a parameter-name prefix such as \"encoder.layer.0.\""));
                        }
                        else if (exclude.Contains(prefix!))
                        {
                            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadQuantization, location, symbol.Name, $"Exclude lists '{prefix}' twice; remove the repeat"));
                        }
                        else
                        {
                            exclude.Add(prefix!);
                        }
                    }
                }
            }

            return new QuantizeInfo(exclude.ToEquatableArray(), location);
        }

        private static List<HyperSpec> ReadHypers(INamedTypeSymbol symbol, SemanticModel semanticModel, List<DiagnosticInfo> diagnostics, CancellationToken ct)
        {
            var hypers = new List<HyperSpec>();
            foreach (var member in symbol.GetMembers())
            {
                if (!member.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == HyperAttribute))
                {
                    continue;
                }

                var (type, syntaxRef) = member switch
                {
                    IFieldSymbol f => (f.Type, f.DeclaringSyntaxReferences.FirstOrDefault()),
                    IPropertySymbol p => (p.Type, p.DeclaringSyntaxReferences.FirstOrDefault()),
                    _ => (null, null),
                };
                var syntax = syntaxRef?.GetSyntax(ct);
                var location = LocationInfo.From(member.Locations.FirstOrDefault() ?? Location.None);
                HyperKind? kind = type?.SpecialType switch
                {
                    SpecialType.System_Int32 => HyperKind.Int,
                    SpecialType.System_Single or SpecialType.System_Double => HyperKind.Float,
                    SpecialType.System_Boolean => HyperKind.Bool,
                    _ => null,
                };
                if (kind is null)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadDeclaration, location, member.Name, "a [Hyper] must be an int, float, double or bool field or property"));
                    continue;
                }

                double? value = null;
                var initializer = syntax switch
                {
                    VariableDeclaratorSyntax v => v.Initializer?.Value,
                    PropertyDeclarationSyntax p => p.Initializer?.Value,
                    _ => null,
                };
                if (initializer is not null && syntax is not null)
                {
                    var model = semanticModel.SyntaxTree == syntax.SyntaxTree ? semanticModel : semanticModel.Compilation.GetSemanticModel(syntax.SyntaxTree);
                    var constant = model.GetConstantValue(initializer, ct);
                    value = constant.HasValue ? ToDouble(constant.Value) : null;
                    if (value is null)
                    {
                        diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadDeclaration, LocationInfo.From(initializer), member.Name, "a hyper-parameter default must be a compile-time constant"));
                    }
                }

                hypers.Add(new HyperSpec(member.Name, kind.Value, value, location));
            }

            return hypers;
        }

        private static double? ToDouble(object? value) => value switch
        {
            int i => i,
            long l => l,
            float f => (double)(decimal)f, // 1e-12f → 1E-12, not 9.9999999600419720025e-13
            double d => d,
            bool b => b ? 1 : 0,
            _ => null,
        };

        /// <summary>A configuration-only model: a [Model] with no [Forward] of its own that derives from a [Model] class
        /// and sets the base's hyper-parameters to constants in a parameterless constructor. Null when the class has a
        /// [Forward] or no base class (it is then an ordinary model).</summary>
        private static BaseModelSpec? ReadBaseModel(INamedTypeSymbol symbol, ClassDeclarationSyntax syntax, SemanticModel semanticModel, List<HyperSpec> ownHypers, List<DiagnosticInfo> diagnostics, CancellationToken ct)
        {
            var baseType = symbol.BaseType;
            if (baseType is null || baseType.SpecialType == SpecialType.System_Object || HasForward(symbol))
            {
                return null;
            }

            var baseSyntax = symbol.DeclaringSyntaxReferences
                .Select(r => r.GetSyntax(ct)).OfType<ClassDeclarationSyntax>()
                .Select(c => c.BaseList?.Types.FirstOrDefault()).FirstOrDefault(t => t is not null);
            var baseLocation = LocationInfo.From((SyntaxNode?)baseSyntax ?? syntax.Identifier.Parent);
            var baseFullName = baseType.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat).Replace("global::", "");
            var assignments = new List<HyperAssignment>();
            var configured = new BaseModelSpec(baseFullName, baseType.Name, EquatableArray<HyperAssignment>.Empty, baseLocation);
            if (!baseType.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == ModelAttribute))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadConfiguration, baseLocation, symbol.Name,
                    $"its base class '{baseType.Name}' is not a [Model]; derive from a [Model] class that has a [Forward] (or is configuration-only itself), or give '{symbol.Name}' a [Forward] of its own"));
                return configured;
            }

            foreach (var hyper in ownHypers)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadConfiguration, hyper.Location, symbol.Name,
                    $"it declares [Hyper] '{hyper.Name}', but a configuration-only model only sets its base's hyper-parameters (in its constructor); declare '{hyper.Name}' in '{baseType.Name}'"));
            }

            var baseHypers = new Dictionary<string, ISymbol>(StringComparer.Ordinal);
            for (var type = baseType; type is not null && type.SpecialType != SpecialType.System_Object; type = type.BaseType)
            {
                foreach (var member in type.GetMembers().Where(m => m.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == HyperAttribute)))
                {
                    if (!baseHypers.ContainsKey(member.Name))
                    {
                        baseHypers[member.Name] = member;
                    }
                }
            }

            var hyperList = baseHypers.Count == 0 ? "(none)" : string.Join(", ", baseHypers.Keys.OrderBy(k => k, StringComparer.Ordinal));
            foreach (var constructor in symbol.InstanceConstructors.Where(c => !c.IsImplicitlyDeclared))
            {
                var declaration = constructor.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(ct) as ConstructorDeclarationSyntax;
                if (declaration is null)
                {
                    continue;
                }

                var model = semanticModel.SyntaxTree == declaration.SyntaxTree ? semanticModel : semanticModel.Compilation.GetSemanticModel(declaration.SyntaxTree);
                if (constructor.Parameters.Length > 0 || declaration.Initializer is { ArgumentList.Arguments.Count: > 0 })
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadConfiguration, LocationInfo.From(declaration.ParameterList), symbol.Name,
                        "its constructor takes or passes arguments; give it one parameterless constructor that only sets hyper-parameters, e.g. Layers = 6;"));
                    continue;
                }

                var statements = declaration.ExpressionBody is { } arrow
                    ? new[] { (SyntaxNode)arrow.Expression }
                    : declaration.Body?.Statements.Select(st => st is ExpressionStatementSyntax e ? (SyntaxNode)e.Expression : st).ToArray() ?? Array.Empty<SyntaxNode>();
                foreach (var statement in statements)
                {
                    ct.ThrowIfCancellationRequested();
                    if (statement is not AssignmentExpressionSyntax assignment || !assignment.IsKind(SyntaxKind.SimpleAssignmentExpression))
                    {
                        diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadConfiguration, LocationInfo.From(statement), symbol.Name,
                            "its constructor may only set hyper-parameters of the base model to constants (Hidden = 384;)"));
                        continue;
                    }

                    var target = model.GetSymbolInfo(assignment.Left, ct).Symbol;
                    var name = assignment.Left is MemberAccessExpressionSyntax member ? member.Name.Identifier.ValueText : assignment.Left.ToString();
                    if (target is null || !baseHypers.TryGetValue(target.Name, out var hyper) || !SymbolEqualityComparer.Default.Equals(hyper, target))
                    {
                        diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnknownHyper, LocationInfo.From(assignment.Left), name, baseType.Name, hyperList));
                        continue;
                    }

                    var constant = model.GetConstantValue(assignment.Right, ct);
                    var value = constant.HasValue ? ToDouble(constant.Value) : null;
                    if (value is null)
                    {
                        diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadConfiguration, LocationInfo.From(assignment.Right), symbol.Name,
                            $"'{assignment.Right}' is not a compile-time constant; set '{target.Name}' to a literal or a const so the generator can read it"));
                        continue;
                    }

                    if (assignments.Any(a => a.Name == target.Name))
                    {
                        diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadConfiguration, LocationInfo.From(assignment), symbol.Name, $"'{target.Name}' is set twice; keep one assignment"));
                        continue;
                    }

                    assignments.Add(new HyperAssignment(target.Name, value.Value, LocationInfo.From(assignment)));
                }
            }

            return configured with { Assignments = assignments.ToEquatableArray() };
        }

        private static bool HasForward(INamedTypeSymbol symbol) =>
            symbol.GetMembers().OfType<IMethodSymbol>().Any(m => m.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == ForwardAttribute));

        private static ForwardSpec? ReadForward(INamedTypeSymbol symbol, SemanticModel semanticModel, bool isModel, List<DiagnosticInfo> diagnostics, CancellationToken ct)
        {
            var forwards = symbol.GetMembers().OfType<IMethodSymbol>()
                .Where(m => m.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == ForwardAttribute))
                .ToList();
            var classLocation = LocationInfo.From(symbol.Locations.FirstOrDefault() ?? Location.None);
            if (forwards.Count != 1)
            {
                diagnostics.Add(DiagnosticInfo.Create(
                    DiagnosticDescriptors.BadDeclaration,
                    forwards.Count == 0 ? classLocation : LocationInfo.From(forwards[1].Locations[0]),
                    symbol.Name,
                    forwards.Count == 0
                        ? "it has no [Forward] method" + (isModel ? "; give it one, or derive it from a [Model] and set that model's hyper-parameters in a constructor" : "")
                        : "it has more than one [Forward] method; keep one"));
                return null;
            }

            var method = forwards[0];
            var syntax = method.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(ct) as MethodDeclarationSyntax;
            if (syntax is null)
            {
                return null;
            }

            var model = semanticModel.SyntaxTree == syntax.SyntaxTree ? semanticModel : semanticModel.Compilation.GetSemanticModel(syntax.SyntaxTree);
            var inputs = new List<InputSpec>();
            foreach (var parameter in method.Parameters)
            {
                var location = LocationInfo.From(parameter.Locations.FirstOrDefault() ?? Location.None);
                if (parameter.Type.ToDisplayString() != ExprType)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadDeclaration, location, symbol.Name, $"Forward parameter '{parameter.Name}' must be of type GraphCompiler.Expr"));
                    continue;
                }

                var inputAttr = parameter.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == InputAttribute);
                DTypeSpec? dtype = null;
                var dims = ImmutableArray<string>.Empty;
                if (inputAttr is not null && inputAttr.ConstructorArguments.Length == 2)
                {
                    dtype = inputAttr.ConstructorArguments[0].Value is int d && Enum.IsDefined(typeof(DTypeSpec), d) ? (DTypeSpec)d : null;
                    var dimsArg = inputAttr.ConstructorArguments[1];
                    dims = dimsArg.Kind == TypedConstantKind.Array && !dimsArg.IsNull
                        ? dimsArg.Values.Select(v => v.Value as string ?? "").ToImmutableArray()
                        : ImmutableArray<string>.Empty;
                }

                if (isModel && inputAttr is null)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadInput, location, parameter.Name, symbol.Name, "a model input needs [Input(DType..., \"batch\", \"seq\", ...)] to fix its dtype and shape"));
                }

                inputs.Add(new InputSpec(parameter.Name, dtype, dims.ToEquatableArray(), location));
            }

            if (method.ReturnType.ToDisplayString() != ExprType && !(method.ReturnType.IsTupleType && method.ReturnType is INamedTypeSymbol tuple && tuple.TupleElements.All(e => e.Type.ToDisplayString() == ExprType)))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.BadDeclaration, LocationInfo.From(syntax.ReturnType), symbol.Name, "Forward must return Expr or a tuple of Expr"));
            }

            var reader = new BodyReader(model, symbol, diagnostics, ct);
            var body = reader.ReadBody(syntax);
            return new ForwardSpec(inputs.ToEquatableArray(), body.ToEquatableArray(), LocationInfo.From(syntax.Identifier.GetLocation()));
        }

        /// <summary>Reads a Forward body into statements; reports every construct outside the language.</summary>
        private sealed class BodyReader
        {
            private readonly SemanticModel _model;
            private readonly INamedTypeSymbol _declaration;
            private readonly List<DiagnosticInfo> _diagnostics;
            private readonly CancellationToken _ct;

            public BodyReader(SemanticModel model, INamedTypeSymbol declaration, List<DiagnosticInfo> diagnostics, CancellationToken ct)
            {
                _model = model;
                _declaration = declaration;
                _diagnostics = diagnostics;
                _ct = ct;
            }

            public List<StatementSpec> ReadBody(MethodDeclarationSyntax method)
            {
                var statements = new List<StatementSpec>();
                if (method.ExpressionBody is not null)
                {
                    var value = ReadValue(method.ExpressionBody.Expression);
                    if (value is not null)
                    {
                        statements.Add(new StatementSpec(StatementKind.Return, null, value, LocationInfo.From(method.ExpressionBody)));
                    }

                    return statements;
                }

                if (method.Body is null)
                {
                    NotDsl(method, "a Forward needs a body");
                    return statements;
                }

                foreach (var statement in method.Body.Statements)
                {
                    _ct.ThrowIfCancellationRequested();
                    ReadStatement(statement, statements);
                }

                return statements;
            }

            private void ReadStatement(StatementSyntax statement, List<StatementSpec> into)
            {
                switch (statement)
                {
                    case LocalDeclarationStatementSyntax local when !local.IsConst && local.UsingKeyword.IsKind(SyntaxKind.None):
                        foreach (var declarator in local.Declaration.Variables)
                        {
                            if (declarator.Initializer is null)
                            {
                                NotDsl(declarator, "declare each local with a value (var x = ...)");
                                continue;
                            }

                            var value = ReadValue(declarator.Initializer.Value);
                            if (value is not null)
                            {
                                into.Add(new StatementSpec(StatementKind.Let, declarator.Identifier.ValueText, value, LocationInfo.From(declarator)));
                            }
                        }

                        break;
                    case ExpressionStatementSyntax { Expression: AssignmentExpressionSyntax assignment } when assignment.IsKind(SyntaxKind.SimpleAssignmentExpression):
                        if (assignment.Left is IdentifierNameSyntax target && _model.GetSymbolInfo(target, _ct).Symbol is ILocalSymbol)
                        {
                            var value = ReadValue(assignment.Right);
                            if (value is not null)
                            {
                                into.Add(new StatementSpec(StatementKind.Assign, target.Identifier.ValueText, value, LocationInfo.From(assignment)));
                            }
                        }
                        else
                        {
                            NotDsl(assignment.Left, "only locals of the Forward can be assigned");
                        }

                        break;
                    case ReturnStatementSyntax { Expression: not null } ret:
                        var returned = ReadValue(ret.Expression);
                        if (returned is not null)
                        {
                            into.Add(new StatementSpec(StatementKind.Return, null, returned, LocationInfo.From(ret)));
                        }

                        break;
                    default:
                        NotDsl(statement, "a Forward may contain only 'var x = ...;', 'x = ...;' and 'return ...;'");
                        break;
                }
            }

            /// <summary>A statement's value; a value that cannot be read always carries a diagnostic, so a statement is
            /// never dropped silently (the model would compile without it).</summary>
            private DslExpr? ReadValue(ExpressionSyntax syntax)
            {
                var before = _diagnostics.Count;
                var value = ReadExpr(syntax);
                if (value is null && _diagnostics.Count == before)
                {
                    NotDsl(syntax, "this expression cannot be read as part of the Forward language; fix the C# errors in it");
                }

                return value;
            }

            private DslExpr? ReadExpr(ExpressionSyntax syntax)
            {
                _ct.ThrowIfCancellationRequested();
                var location = LocationInfo.From(syntax);
                switch (syntax)
                {
                    case ParenthesizedExpressionSyntax paren:
                        return ReadExpr(paren.Expression);
                    case LiteralExpressionSyntax literal:
                        return ReadLiteral(literal, location);
                    case PrefixUnaryExpressionSyntax { RawKind: (int)SyntaxKind.UnaryMinusExpression } neg:
                        var operand = ReadExpr(neg.Operand);
                        return operand is null ? null : new UnaryExpr("-", operand, location);
                    case BinaryExpressionSyntax binary when binary.Kind() is SyntaxKind.AddExpression or SyntaxKind.SubtractExpression
                        or SyntaxKind.MultiplyExpression or SyntaxKind.DivideExpression or SyntaxKind.ModuloExpression:
                        var left = ReadExpr(binary.Left);
                        var right = ReadExpr(binary.Right);
                        return left is null || right is null ? null : new BinaryExpr(binary.OperatorToken.ValueText, left, right, location);
                    case TupleExpressionSyntax tuple:
                        var items = tuple.Arguments.Select(a => ReadExpr(a.Expression)).ToList();
                        return items.Any(i => i is null) ? null : new TupleExpr(items.Select(i => i!).ToEquatableArray(), location);
                    case IdentifierNameSyntax or MemberAccessExpressionSyntax when syntax is not MemberAccessExpressionSyntax { Parent: InvocationExpressionSyntax }:
                        return ReadName(syntax, location);
                    case InvocationExpressionSyntax invocation:
                        return ReadCall(invocation, location);
                    case ObjectCreationExpressionSyntax creation:
                        return ReadNewBlock(creation, location);
                    case ImplicitArrayCreationExpressionSyntax implicitArray:
                        return ReadArray(implicitArray.Initializer.Expressions, location);
                    case ArrayCreationExpressionSyntax { Initializer: not null } array:
                        return ReadArray(array.Initializer.Expressions, location);
                    case CollectionExpressionSyntax collection:
                        return ReadArray(collection.Elements.OfType<ExpressionElementSyntax>().Select(e => e.Expression), location);
                    case CastExpressionSyntax cast:
                        return ReadExpr(cast.Expression);
                    default:
                        NotDsl(syntax, "use locals, calls to GraphCompiler.Ops, +, -, *, / on tensors and hyper-parameters, and literals");
                        return null;
                }
            }

            private DslExpr? ReadArray(IEnumerable<ExpressionSyntax> elements, LocationInfo? location)
            {
                var items = elements.Select(ReadExpr).ToList();
                return items.Any(i => i is null) ? null : new ArrayExpr(items.Select(i => i!).ToEquatableArray(), location);
            }

            private DslExpr? ReadLiteral(LiteralExpressionSyntax literal, LocationInfo? location)
            {
                switch (literal.Token.Value)
                {
                    case int i:
                        return new NumberExpr(i, true, location);
                    case long l:
                        return new NumberExpr(l, true, location);
                    case float f:
                        return new NumberExpr((double)(decimal)f, false, location);
                    case double d:
                        return new NumberExpr(d, false, location);
                    case string s:
                        return new StringExpr(s, location);
                    case bool b:
                        return new BoolExpr(b, location);
                    default:
                        NotDsl(literal, "only numeric, string and bool literals are allowed");
                        return null;
                }
            }

            private DslExpr? ReadName(ExpressionSyntax syntax, LocationInfo? location)
            {
                var symbol = _model.GetSymbolInfo(syntax, _ct).Symbol;
                var text = syntax.ToString();
                switch (symbol)
                {
                    case ILocalSymbol local:
                        return new RefExpr(local.Name, location);
                    case IParameterSymbol parameter:
                        return new RefExpr(parameter.Name, location);
                    case IFieldSymbol { ContainingType: var type } field when type.ToDisplayString() == OpsType && field.Name is "Batch" or "Seq":
                        return new SymDimExpr(field.Name == "Batch" ? "batch" : "seq", location);
                    case IFieldSymbol { ContainingType.TypeKind: TypeKind.Enum } enumField when enumField.ContainingType.ContainingNamespace.ToDisplayString() == "GraphCompiler":
                        return new EnumExpr(enumField.ContainingType.Name, enumField.Name, location);
                    case IFieldSymbol or IPropertySymbol when SymbolEqualityComparer.Default.Equals(symbol.ContainingType, _declaration)
                                                            && symbol.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == HyperAttribute):
                        return new HyperExpr(symbol.Name, location);
                    case IFieldSymbol { IsConst: true } constant:
                        var value = ToDouble(constant.ConstantValue);
                        if (value is not null)
                        {
                            return new NumberExpr(value.Value, constant.Type.SpecialType == SpecialType.System_Int32, location);
                        }

                        break;
                    case null:
                        _diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UndefinedValue, location, $"'{text}' is not defined: use a local, a Forward input or a [Hyper] of '{_declaration.Name}'"));
                        return null;
                }

                NotDsl(syntax, $"'{text}' is not a local, a Forward input, a [Hyper] of '{_declaration.Name}' or a constant");
                return null;
            }

            private DslExpr? ReadCall(InvocationExpressionSyntax invocation, LocationInfo? location)
            {
                var info = _model.GetSymbolInfo(invocation, _ct);
                var symbol = info.Symbol as IMethodSymbol;
                var name = invocation.Expression switch
                {
                    MemberAccessExpressionSyntax member => member.Name.Identifier.ValueText,
                    IdentifierNameSyntax identifier => identifier.Identifier.ValueText,
                    GenericNameSyntax generic => generic.Identifier.ValueText,
                    _ => invocation.Expression.ToString(),
                };
                if (symbol is null)
                {
                    var ops = info.CandidateSymbols.OfType<IMethodSymbol>().Where(m => m.ContainingType?.ToDisplayString() == OpsType).ToList();
                    if (ops.Count == 0)
                    {
                        _diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnknownOp, LocationInfo.From(invocation.Expression), name, string.Join(", ", OpCatalog.Names)));
                        return null;
                    }

                    // The op exists but its arguments do not bind: report an undefined name inside them where it is,
                    // else the call with the op's signature.
                    var before = _diagnostics.Count;
                    foreach (var argument in invocation.ArgumentList.Arguments)
                    {
                        ReadExpr(argument.Expression);
                    }

                    if (_diagnostics.Count == before)
                    {
                        var overloads = ops[0].ContainingType.GetMembers(ops[0].Name).OfType<IMethodSymbol>();
                        var signatures = string.Join(" or ", overloads.Select(m => m.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat)));
                        _diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UndefinedValue, location, $"the arguments of '{Shorten(invocation)}' do not match {signatures}: pass the arguments it declares"));
                    }

                    return null;
                }

                if (symbol.ContainingType?.ToDisplayString() != OpsType)
                {
                    NotDsl(invocation, $"only GraphCompiler.Ops may be called, not {symbol.ContainingType?.Name}.{symbol.Name}; use a constant, a [Hyper] or +, -, *, / on them, or make reusable layers a [Block]");
                    return null;
                }

                if (_model.GetOperation(invocation, _ct) is not IInvocationOperation operation)
                {
                    NotDsl(invocation, "the call could not be bound; fix the C# errors in it");
                    return null;
                }

                var args = new List<NamedArg>();
                foreach (var argument in operation.Arguments)
                {
                    DslExpr? value;
                    if (argument.ArgumentKind == ArgumentKind.DefaultValue)
                    {
                        value = DefaultOf(argument.Parameter!, location);
                    }
                    else if (argument.ArgumentKind == ArgumentKind.ParamArray)
                    {
                        var elements = argument.Value is IArrayCreationOperation { Initializer: { } init }
                            ? init.ElementValues.Select(e => e.Syntax as ExpressionSyntax).ToList()
                            : new List<ExpressionSyntax?>();
                        var items = elements.Select(e => e is null ? null : ReadExpr(e)).ToList();
                        value = items.Any(i => i is null) ? null : new ArrayExpr(items.Select(i => i!).ToEquatableArray(), LocationInfo.From(argument.Syntax));
                    }
                    else
                    {
                        var argSyntax = argument.Syntax is ArgumentSyntax a ? a.Expression : argument.Syntax as ExpressionSyntax;
                        value = argSyntax is null ? null : ReadExpr(argSyntax);
                    }

                    if (value is null)
                    {
                        return null;
                    }

                    args.Add(new NamedArg(argument.Parameter!.Name, value));
                }

                return new CallExpr(symbol.Name, args.ToEquatableArray(), location);
            }

            private static DslExpr? DefaultOf(IParameterSymbol parameter, LocationInfo? location) => parameter.ExplicitDefaultValue switch
            {
                bool b => new BoolExpr(b, location),
                int i => new NumberExpr(i, true, location),
                double d => new NumberExpr(d, false, location),
                string s => new StringExpr(s, location),
                _ => null,
            };

            private DslExpr? ReadNewBlock(ObjectCreationExpressionSyntax creation, LocationInfo? location)
            {
                var type = _model.GetTypeInfo(creation, _ct).Type as INamedTypeSymbol;
                if (type is null || type.TypeKind == TypeKind.Error || !type.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == BlockAttribute))
                {
                    var why = type is null || type.TypeKind == TypeKind.Error
                        ? "no such type is declared in this project or its references; declare the class with [Block] and a [Forward], or reference the assembly that does"
                        : SymbolEqualityComparer.Default.Equals(type.ContainingAssembly, _model.Compilation.Assembly)
                            ? "its class is not marked [Block]; mark it [Block] and give it a [Forward]"
                            : $"its class in assembly '{type.ContainingAssembly?.Identity.Name}' is not marked [Block]; only [Block] classes can be applied";
                    _diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnknownBlock, LocationInfo.From(creation.Type), creation.Type.ToString(), why));
                    return null;
                }

                if (creation.ArgumentList is { Arguments.Count: > 0 })
                {
                    NotDsl(creation.ArgumentList, "set a block's hyper-parameters with an object initializer: new Block { Hidden = 768 }");
                    return null;
                }

                var inits = new List<NamedArg>();
                foreach (var expression in creation.Initializer?.Expressions ?? default)
                {
                    if (expression is AssignmentExpressionSyntax { Left: IdentifierNameSyntax member } assign)
                    {
                        var value = ReadExpr(assign.Right);
                        if (value is null)
                        {
                            return null;
                        }

                        inits.Add(new NamedArg(member.Identifier.ValueText, value));
                    }
                    else
                    {
                        NotDsl(expression, "a block initializer may only set hyper-parameters: Name = value");
                        return null;
                    }
                }

                var fullName = type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat).Replace("global::", "");
                var external = SymbolEqualityComparer.Default.Equals(type.ContainingAssembly, _model.Compilation.Assembly) ? null : type.ContainingAssembly.Identity.Name;
                return new NewBlockExpr(fullName, inits.ToEquatableArray(), location, external);
            }

            private void NotDsl(SyntaxNode node, string why) =>
                _diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NotDsl, LocationInfo.From(node), Shorten(node), why));

            /// <summary>The node's text on one line, cut to 60 characters for messages.</summary>
            private static string Shorten(SyntaxNode node)
            {
                var text = node.ToString();
                if (text.Length > 60)
                {
                    text = text.Substring(0, 57) + "...";
                }

                return text.Replace("\r", "").Replace("\n", " ");
            }
        }
    }
}
