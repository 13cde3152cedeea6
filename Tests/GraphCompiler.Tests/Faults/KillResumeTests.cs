using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using GraphCompiler.Runtime.IO;
using GraphCompiler.Runtime.Training;
using Xunit;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace GraphCompiler.Tests.Faults;

/// <summary>Issue 21, part 2: the MRPC sample as a real process, SIGKILLed at named points (GRAPHCOMPILER_FAULT_AT
/// holds it there) and resumed with --resume, ends with the uninterrupted run's metrics and weights; no checkpoint or
/// export file is ever half-written under its final name; a damaged last checkpoint is passed over for the previous
/// one, with a message. Cheap: demo pairs, one epoch of two steps (--swap-pairs), no timing.</summary>
[Collection(GraphCompiler.Tests.Runtime.TorchRngCollection.Name)]
public sealed class KillResumeTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gc-kill-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public void KilledAtEachPointAndResumed_EndsAsTheUninterruptedRun()
    {
        var straight = Path.Combine(_dir, "straight");
        var killed = Path.Combine(_dir, "killed");
        Run(straight, fault: null, "--int8", "false");
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(straight, "report.json")))!;

        // 1. Mid-epoch: after step 2's update, before its checkpoint; step 1's checkpoint is the latest.
        Run(killed, "step:2");
        AssertNothingHalfWritten(killed);
        Assert.EndsWith("step-000001-e0-b1", new CheckpointStore(killed).Latest);

        // 2. Mid-checkpoint: step 2's model.safetensors half written in the checkpoint's temporary folder.
        var log = Run(killed, "write:/checkpoints/", "--resume");
        Assert.Contains("resuming from ", log);
        AssertNothingHalfWritten(killed);
        Assert.EndsWith("step-000001-e0-b1", new CheckpointStore(killed).Latest);
        Assert.NotEmpty(Directory.GetDirectories(Path.Combine(killed, "checkpoints"), ".step-000002-*.tmp-*"));

        // 3. Mid-export: the int8 params half written; training finished and checkpointed.
        log = Run(killed, "write:/export/minilm-int8-0000.params", "--resume");
        Assert.Contains("left half-written by an earlier run that was stopped", log);
        AssertNothingHalfWritten(killed);
        Assert.False(File.Exists(Path.Combine(killed, "export", "minilm-int8-0000.params")));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(killed, "export"), "minilm-int8-0000.params.tmp-*"));
        var store = new CheckpointStore(killed);
        var latest = store.Latest!;
        Assert.EndsWith("step-000002-e1-b0", latest);

        // 4. The last checkpoint damaged (truncated model file): --resume falls back to the previous one and finishes.
        var modelFile = Path.Combine(latest, CheckpointStore.ModelFile);
        using (var f = new FileStream(modelFile, FileMode.Open))
        {
            f.SetLength(f.Length / 3);
        }

        log = Run(killed, fault: null, "--resume");
        Assert.Contains($"checkpoint {latest} is damaged ({modelFile}: ", log);
        Assert.Contains($"resumed from the previous good checkpoint, {Path.Combine(killed, "checkpoints", "step-000002-e0-b2")}", log);
        Assert.Empty(Directory.GetFileSystemEntries(killed, "*.tmp-*", SearchOption.AllDirectories));
        AssertNothingHalfWritten(killed);

        var actual = JsonNode.Parse(File.ReadAllText(Path.Combine(killed, "report.json")))!;
        Assert.Equal(expected["dev"]!.ToJsonString(), actual["dev"]!.ToJsonString());
        Assert.Equal(expected["best_epoch"]!.ToJsonString(), actual["best_epoch"]!.ToJsonString());
        Assert.Equal(expected["first_logged_loss"]!.ToJsonString(), actual["first_logged_loss"]!.ToJsonString());
        foreach (var key in new[] { "epoch", "train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "dev_f1" })
        {
            Assert.Equal(expected["history"]!.AsArray().Select(e => e![key]!.ToJsonString()), actual["history"]!.AsArray().Select(e => e![key]!.ToJsonString()));
        }

        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, "model.safetensors")), File.ReadAllBytes(Path.Combine(killed, "model.safetensors")));
        Assert.True((bool)actual["int8"]!["imported_predictions_identical"]!);
    }

    /// <summary>Every checkpoint directory under its final name verifies against its manifest, and every export file
    /// under its final name is complete (each symbol file parses with its params; each ONNX file loads).</summary>
    private static void AssertNothingHalfWritten(string dir)
    {
        var store = new CheckpointStore(dir);
        foreach (var checkpoint in store.ResumeCandidates())
        {
            CheckpointStore.Verify(checkpoint);
        }

        var export = Path.Combine(dir, "export");
        if (!Directory.Exists(export))
        {
            return;
        }

        foreach (var symbol in Directory.GetFiles(export, "*-symbol.json"))
        {
            var prefix = symbol[..^"-symbol.json".Length];
            var names = GraphCompiler.Runtime.Symbol.SymbolFile.Load(symbol).Arguments.Select(a => a.Name).ToArray();
            using var block = GraphCompiler.Runtime.Symbol.SymbolBlock.Imports(symbol, names, GraphCompiler.Runtime.Symbol.ModelExport.ParamsPath(prefix));
        }

        foreach (var onnx in Directory.GetFiles(export, "*.onnx"))
        {
            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(onnx);
        }
    }

    /// <summary>Runs the sample in <paramref name="outputDir"/>; with a fault point, waits until it is reached, then
    /// SIGKILLs the process. Returns its standard output.</summary>
    private string Run(string outputDir, string? fault, params string[] extra)
    {
        var exe = Path.Combine(AppContext.BaseDirectory, "GraphCompiler.Samples.Mrpc");
        var start = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--epochs", "1", "--swap-pairs", "true", "--checkpoint-every", "1", "--timing-runs", "0", "--calibration-batches", "1", "--progress", "Lines", "--out", outputDir }.Concat(extra))
        {
            start.ArgumentList.Add(a);
        }

        start.Environment.Remove(FaultPoints.Variable);
        if (fault is not null)
        {
            start.Environment[FaultPoints.Variable] = fault;
        }

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var reached = new ManualResetEventSlim();
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) =>
        {
            lock (stdout)
            {
                stdout.AppendLine(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            lock (stderr)
            {
                stderr.AppendLine(e.Data);
            }

            if (e.Data?.StartsWith("fault point reached: ", StringComparison.Ordinal) == true)
            {
                reached.Set();
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            if (fault is not null)
            {
                if (!reached.Wait(Timeout) )
                {
                    throw new XunitException($"fault point {fault} not reached in {Timeout}; exit: {(process.HasExited ? process.ExitCode : "running")}\n{stdout}\n{stderr}");
                }

                process.Kill(); // SIGKILL
                process.WaitForExit();
                output.WriteLine($"{fault}: killed after {clock.Elapsed.TotalSeconds:F1} s");
            }
            else
            {
                if (!process.WaitForExit(Timeout))
                {
                    throw new XunitException($"the run did not finish in {Timeout}\n{stdout}\n{stderr}");
                }

                process.WaitForExit();
                output.WriteLine($"{string.Join(' ', extra)}: finished in {clock.Elapsed.TotalSeconds:F1} s");
                Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}\n{stdout}\n{stderr}");
            }
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit();
            }
        }

        lock (stdout)
        {
            return stdout.ToString();
        }
    }
}
