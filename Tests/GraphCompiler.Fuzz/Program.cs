using System.Diagnostics;
using GraphCompiler.Fuzz;

// fuzz <reader>              SharpFuzz's loop for afl-fuzz (input on stdin); run once when not under afl-fuzz
// fuzz <reader> FILE...      each file once: exit 1 if any ends in another exception type or takes over 1 s
// fuzz seeds DIR             writes the seed corpora (Corpus/<reader>/) from the project's own writers
if (args.Length == 0 || (args[0] != "seeds" && !Harnesses.All.ContainsKey(args[0])))
{
    Console.Error.WriteLine($"usage: fuzz <{string.Join("|", Harnesses.All.Keys)}> [FILE...] | fuzz seeds DIR");
    return 2;
}

if (args[0] == "seeds")
{
    Seeds.Write(args.Length > 1 ? args[1] : "Corpus");
    return 0;
}

// Instrumented code records its edges through SharpFuzz's trace pointer, which only Fuzzer.Run points at afl-fuzz's
// shared memory: until then (warm-up, replays) it must point somewhere, or the first instrumented branch faults.
unsafe
{
    SharpFuzz.Common.Trace.SharedMem = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed(1 << 16);
}

var harness = Harnesses.All[args[0]];
if (args.Length > 1)
{
    return Replay(harness, args.Skip(1));
}

// Warm up (JIT, libtorch, tokenizer) before afl-fuzz starts timing: the first input must not count as a hang.
if (Environment.GetEnvironmentVariable("FUZZ_WARMUP_DIR") is { Length: > 0 } warmup && Directory.Exists(warmup))
{
    foreach (var file in Directory.GetFiles(warmup))
    {
        harness.RunFile(file);
    }
}

SharpFuzz.Fuzzer.Run(harness.Run);
return 0;

static int Replay(Harness harness, IEnumerable<string> files)
{
    var failed = 0;
    foreach (var file in files)
    {
        // An untimed run first, so JIT and libtorch start-up are not counted against the file.
        try
        {
            harness.RunFile(file);
        }
        catch (Exception)
        {
            // reported by the timed run
        }

        var watch = Stopwatch.StartNew();
        string outcome;
        try
        {
            outcome = harness.RunFile(file);
        }
        catch (Exception e)
        {
            outcome = "BUG: " + e;
            failed++;
        }

        watch.Stop();
        if (watch.Elapsed > Harness.HangLimit && !outcome.StartsWith("BUG", StringComparison.Ordinal))
        {
            outcome = $"BUG: took {watch.Elapsed.TotalSeconds:F2} s (limit {Harness.HangLimit.TotalSeconds} s); " + outcome;
            failed++;
        }

        Console.WriteLine($"{file}: {outcome}");
    }

    return failed == 0 ? 0 : 1;
}
