using Xunit.Sdk;

namespace GraphCompiler.Tests.Infrastructure;

/// <summary>Where the MRPC data is: MRPC_DIR (set by scripts/test.sh to ../shared/data/mrpc). Missing data fails the
/// test with a message; it is never a skip.</summary>
public static class Mrpc
{
    public static string Directory
    {
        get
        {
            var dir = Environment.GetEnvironmentVariable("MRPC_DIR");
            if (string.IsNullOrEmpty(dir))
            {
                dir = Path.GetFullPath(Path.Combine(Snapshot.Root, "..", "..", "..", "shared", "data", "mrpc"));
            }

            if (!File.Exists(Path.Combine(dir, "dev.tsv")))
            {
                throw new XunitException($"MRPC data not found at '{dir}' (dev.tsv missing). Set MRPC_DIR to the folder with train.tsv and dev.tsv.");
            }

            return dir;
        }
    }

    /// <summary>(label, sentence A, sentence B) of a split, header skipped; a quick reader for tests that only need pairs.</summary>
    public static IEnumerable<(string Label, string A, string B)> Pairs(string split) =>
        File.ReadLines(Path.Combine(Directory, split + ".tsv")).Skip(1)
            .Select(l => l.Split('\t'))
            .Select(f => (f[0].TrimStart('\uFEFF'), f[3], f[4]));
}
