using System.Text.Json.Nodes;

namespace GraphCompiler.Samples.Mrpc;

/// <summary>Keeps report.json valid JSON: NaN and ±infinity have no JSON spelling (System.Text.Json refuses to write
/// them), so each becomes null and its path is listed under "non_finite", which says the number was not finite.</summary>
public static class ReportJson
{
    public static void ReplaceNonFinite(JsonObject report)
    {
        var paths = new List<string>();
        Walk(report, "$", paths);
        if (paths.Count > 0)
        {
            report["non_finite"] = new JsonArray(paths.Select(p => (JsonNode?)JsonValue.Create(p)).ToArray());
        }
    }

    private static void Walk(JsonNode node, string path, List<string> found)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var key in o.Select(kv => kv.Key).ToList())
                {
                    if (o[key] is { } child && Replace(child, $"{path}.{key}", found))
                    {
                        o[key] = null;
                    }
                }

                break;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    if (a[i] is { } child && Replace(child, $"{path}[{i}]", found))
                    {
                        a[i] = null;
                    }
                }

                break;
        }
    }

    /// <summary>True when <paramref name="node"/> is a non-finite number to replace; recurses into containers.</summary>
    private static bool Replace(JsonNode node, string path, List<string> found)
    {
        if (node is JsonValue value)
        {
            var finite = value.TryGetValue<double>(out var d) ? double.IsFinite(d)
                : value.TryGetValue<float>(out var f) ? float.IsFinite(f)
                : true;
            if (!finite)
            {
                found.Add(path);
            }

            return !finite;
        }

        Walk(node, path, found);
        return false;
    }
}
