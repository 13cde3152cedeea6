using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using GraphCompiler.Generator.Ir;

namespace GraphCompiler.Generator.Emit
{
    /// <summary>Where one body's repeated block instances (encoder.layer.0, encoder.layer.1, …) go: into one method per
    /// block, emitted once into the class that holds the body, and called once per instance.</summary>
    public sealed class Outlining
    {
        public Outlining(string suffix, bool isStatic, List<string> methods, ISet<string> usedNames, string? context = null, string? preamble = null)
        {
            Suffix = suffix;
            IsStatic = isStatic;
            Methods = methods;
            UsedNames = usedNames;
            Context = context;
            Preamble = preamble;
        }

        /// <summary>A parameter the body has that its methods need too ("IActivationObserver observer"), or null.</summary>
        public string? Context { get; }

        /// <summary>A first statement the methods repeat from the body (calibration's "const bool training = false"), or null.</summary>
        public string? Preamble { get; }

        /// <summary>Appended to the block's name to name its method in this body ("", "Training", "Backward").</summary>
        public string Suffix { get; }

        /// <summary>Static for bodies that are static (the training forward, the backward).</summary>
        public bool IsStatic { get; }

        /// <summary>The class's outlined methods, already indented for the class body.</summary>
        public List<string> Methods { get; }

        public ISet<string> UsedNames { get; }
    }

    /// <summary>A run of a body's statements that is one instance of a repeated block: positions
    /// [<paramref name="Start"/>, <paramref name="End"/>] of the body's nodes, the values it reads from outside
    /// (<paramref name="Args"/>) and those it leaves for later (<paramref name="Results"/>), in the order the method takes
    /// and returns them.</summary>
    public sealed record BlockRun(int Start, int End, string Instance, IReadOnlyList<int> Args, IReadOnlyList<int> Results);

    /// <summary>Finds the instances of a repeated block in a body. A run is the nodes whose scope starts with the same
    /// "prefix.N"; consecutive runs of one prefix become one method only when every run is the same computation: the
    /// same ops, attributes, types, sources and scopes below the instance, reading and leaving values in the same
    /// positions. Anything else stays inline, so the outlined code is the inline code by construction.</summary>
    public static class RepeatedBlocks
    {
        private static readonly Regex InstanceScope = new(@"^(?<prefix>[A-Za-z_][\w.]*?)\.(?<index>\d+)(?=\.|$)", RegexOptions.CultureInvariant);

        public static IReadOnlyList<(string Prefix, IReadOnlyList<BlockRun> Runs)> Find(IReadOnlyList<Node> compute, IReadOnlyDictionary<int, Node> byId,
            IReadOnlyDictionary<int, int> lastUse, ISet<int> keep)
        {
            var segments = new List<(int Start, int End, string Prefix, string Instance)>();
            for (var i = 0; i < compute.Count; i++)
            {
                var match = InstanceScope.Match(compute[i].Scope);
                if (!match.Success)
                {
                    continue;
                }

                var instance = match.Value;
                var end = i;
                while (end + 1 < compute.Count && InstanceScope.Match(compute[end + 1].Scope) is { Success: true } next && next.Value == instance)
                {
                    end++;
                }

                segments.Add((i, end, match.Groups["prefix"].Value, instance));
                i = end;
            }

            // Consecutive instances of one prefix with the same computation share a method; a differing instance (say
            // the first or last layer, where a neighbour's op was fused in) stays inline and splits the stretch.
            var found = new List<(string, IReadOnlyList<BlockRun>)>();
            var stretch = new List<BlockRun>();
            string? shape = null;
            string? stretchPrefix = null;
            void Close()
            {
                if (stretch.Count > 1)
                {
                    found.Add((stretchPrefix!, stretch.ToList()));
                }

                stretch.Clear();
            }

            for (var k = 0; k < segments.Count; k++)
            {
                var segment = segments[k];
                var (run, signature) = Describe(compute, byId, lastUse, keep, segment.Start, segment.End, segment.Instance);
                var continues = stretch.Count > 0 && segment.Prefix == stretchPrefix && signature == shape && segment.Start == stretch[stretch.Count - 1].End + 1;
                if (!continues)
                {
                    Close();
                }

                stretch.Add(run);
                (shape, stretchPrefix) = (signature, segment.Prefix);
            }

            Close();
            return found;
        }

        /// <summary>A method name from a block prefix: "encoder.layer" → "EncoderLayer".</summary>
        public static string MethodName(string prefix)
        {
            var text = new StringBuilder();
            foreach (var part in prefix.Split('.', '_'))
            {
                var clean = new string(part.Where(char.IsLetterOrDigit).ToArray());
                if (clean.Length > 0)
                {
                    text.Append(char.ToUpperInvariant(clean[0])).Append(clean, 1, clean.Length - 1);
                }
            }

            return text.Length == 0 || char.IsDigit(text[0]) ? "Block" + text : text.ToString();
        }

        private static (BlockRun Run, string Signature) Describe(IReadOnlyList<Node> compute, IReadOnlyDictionary<int, Node> byId, IReadOnlyDictionary<int, int> lastUse,
            ISet<int> keep, int start, int end, string instance)
        {
            var local = new Dictionary<int, int>();
            var args = new List<int>();
            var text = new StringBuilder();
            for (var i = start; i <= end; i++)
            {
                var node = compute[i];
                text.Append(node.Op).Append('(');
                foreach (var input in node.Inputs)
                {
                    if (local.TryGetValue(input, out var l))
                    {
                        text.Append('L').Append(l.ToString(CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        var a = args.IndexOf(input);
                        if (a < 0)
                        {
                            a = args.Count;
                            args.Add(input);
                        }

                        text.Append('A').Append(a.ToString(CultureInfo.InvariantCulture));
                    }

                    text.Append(',');
                }

                // An observe's slot names its instance ("encoder.layer.3.…"): the method builds it from a block argument.
                var attrs = node.Attrs.Select(x => node.Op == OpNames.Observe && x.Key == "slot" && x.Value.StartsWith(instance + ".", StringComparison.Ordinal)
                    ? "slot=*" + x.Value.Substring(instance.Length) : x.ToString());
                text.Append(") ").Append(string.Join(" ", attrs)).Append(" : ").Append(node.Type)
                    .Append(" @ ").Append(node.Scope.Substring(instance.Length)).Append(' ').Append(node.Source).Append('\n');
                local[node.Id] = i - start;
            }

            var results = new List<int>();
            for (var i = start; i <= end; i++)
            {
                var id = compute[i].Id;
                if (keep.Contains(id) || (lastUse.TryGetValue(id, out var use) && use > end))
                {
                    results.Add(id);
                    text.Append("R").Append((i - start).ToString(CultureInfo.InvariantCulture)).Append(' ');
                }
            }

            text.Append("| ").Append(string.Join(" ", args.Select(a => byId[a].Type.ToString())));
            return (new BlockRun(start, end, instance, args, results), text.ToString());
        }
    }
}
