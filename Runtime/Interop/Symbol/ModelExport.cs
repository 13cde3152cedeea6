using System.Text;
using GraphCompiler.Runtime.IO;
using GraphCompiler.Runtime.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace GraphCompiler.Runtime.Symbol;

/// <summary>Exports a generated module as symbol + params (MXNet's <c>net.export</c>): prefix-symbol.json is the
/// module's <see cref="IGraphModule.SymbolJson"/>, prefix-0000.params a safetensors file with every tensor the graph's
/// param nodes name (from the module's parameters and buffers) and metadata (format, model, precision). Read back with
/// <see cref="SymbolBlock.Imports"/>.</summary>
public static class ModelExport
{
    public const string ParamsFormat = "graphcompiler-params";

    public static string SymbolPath(string prefix) => prefix + "-symbol.json";

    public static string ParamsPath(string prefix) => prefix + "-0000.params";

    /// <summary>Test hook: runs before each finished file is renamed into place (the params file, then the symbol file).</summary>
    internal static Action<string>? BeforeRename { get; set; }

    /// <summary>Writes the pair and returns their paths. Everything is checked before anything is written; both files
    /// are written under temporary names and renamed into place together, so a failure leaves the previous pair (or
    /// nothing) behind, never a half-written or mismatched one.</summary>
    public static (string SymbolFile, string ParamsFile) Export(nn.Module module, string prefix)
    {
        var (graphModule, graph) = EmbeddedGraph(module);
        var tensors = ModuleTensors(module);
        SymbolParams.Check(graph, tensors, $"module '{graphModule.ModelName}'", allowUnexpected: true);

        var symbolPath = Path.GetFullPath(SymbolPath(prefix));
        var paramsPath = Path.GetFullPath(ParamsPath(prefix));
        Directory.CreateDirectory(Path.GetDirectoryName(symbolPath)!);
        var symbolTemp = TempName(symbolPath);
        var paramsTemp = TempName(paramsPath);
        try
        {
            AtomicFile.Write(symbolTemp, s => s.Write(new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(graphModule.SymbolJson)));
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["format"] = ParamsFormat,
                ["model"] = graph.Model,
                ["precision"] = graph.Precision,
            };
            SafeTensors.Write(paramsTemp, SymbolParams.Names(graph).Select(n => KeyValuePair.Create(n, tensors[n])), metadata);
            Commit(new[] { (paramsTemp, paramsPath), (symbolTemp, symbolPath) });
            DirectorySync.Flush(Path.GetDirectoryName(symbolPath)!);
        }
        catch (DiskFullException e)
        {
            var file = e.Path == paramsTemp ? paramsPath : symbolPath;
            throw new DiskFullException(file, $"the export {Path.GetFileName(symbolPath)} + {Path.GetFileName(paramsPath)} was not written; the previous pair, if any, is unchanged", e);
        }
        finally
        {
            File.Delete(symbolTemp);
            File.Delete(paramsTemp);
        }

        return (symbolPath, paramsPath);
    }

    /// <summary>A module's parameters and buffers by name (the names its graph's param nodes use).</summary>
    public static Dictionary<string, Tensor> ModuleTensors(nn.Module module)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in module.named_parameters())
        {
            tensors[name] = p;
        }

        foreach (var (name, b) in module.named_buffers())
        {
            tensors[name] = b;
        }

        return tensors;
    }

    /// <summary>Loads prefix-0000.params into the generated module it was exported from (the deployment path: the
    /// graph is compiled in, only the numbers come from the file). Every tensor the module's graph binds must be in
    /// the file with its dtype and shape, and nothing else; the file's model and precision must be the module's.
    /// Errors name the file and the tensor; nothing is copied unless everything checks.</summary>
    public static void Load(nn.Module module, string paramsFile)
    {
        var (_, graph) = EmbeddedGraph(module);
        using var file = SafeTensors.Read(paramsFile);
        foreach (var (key, expected) in new[] { ("model", graph.Model), ("precision", graph.Precision) })
        {
            if (file.Metadata.TryGetValue(key, out var actual) && actual != expected)
            {
                throw new SymbolFileException(paramsFile, null, $"holds {key} '{actual}', but the module is '{expected}'");
            }
        }

        SymbolParams.Check(graph, file, paramsFile, allowUnexpected: false);
        var targets = ModuleTensors(module);
        using (no_grad())
        {
            foreach (var name in SymbolParams.Names(graph))
            {
                targets[name].copy_(file[name]);
            }
        }
    }

    /// <summary>Writes the module's inference graph as ONNX (opset 17) with its current parameters.</summary>
    public static void ExportOnnx(nn.Module module, string path, Onnx.OnnxExportOptions? options = null)
    {
        var (_, graph) = EmbeddedGraph(module);
        Onnx.OnnxExport.Export(graph, ModuleTensors(module), path, options);
    }

    /// <summary>Writes a Triton Inference Server model repository entry for the module: <c>repository/NAME/VERSION/model.onnx</c>
    /// (<see cref="ExportOnnx"/>) and <c>repository/NAME/config.pbtxt</c> (<see cref="TritonConfig"/>: the onnxruntime
    /// backend, inputs, outputs, max_batch_size and dynamic batching from the declared buckets). Returns both paths.</summary>
    public static (string ModelFile, string ConfigFile) ExportTriton(nn.Module module, string repository, TritonOptions? options = null)
    {
        options ??= new TritonOptions();
        var (_, graph) = EmbeddedGraph(module);
        var name = options.Name ?? graph.Model;
        var modelDir = Path.Combine(repository, name);
        var versionDir = Path.Combine(modelDir, options.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(versionDir);
        var modelFile = Path.Combine(versionDir, "model.onnx");
        var configFile = Path.Combine(modelDir, "config.pbtxt");
        ExportOnnx(module, modelFile);
        var config = TritonConfig.Write(graph, options);
        AtomicFile.Write(configFile, s => s.Write(new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(config)));
        return (modelFile, configFile);
    }

    /// <summary>The generated module and the symbol graph it carries; any other module is an ArgumentException.</summary>
    private static (IGraphModule Module, SymbolGraph Graph) EmbeddedGraph(nn.Module module)
    {
        if (module is not IGraphModule graphModule)
        {
            throw new ArgumentException($"module '{module.GetName()}' ({module.GetType().Name}) is not a generated graph module: only IGraphModule models can be exported or loaded", nameof(module));
        }

        return (graphModule, SymbolFile.Parse(graphModule.SymbolJson, graphModule.ModelName + ".SymbolJson"));
    }

    /// <summary>Renames finished files into place, all or none: existing targets are set aside first and put back if
    /// any rename fails.</summary>
    private static void Commit(IReadOnlyList<(string Temp, string Target)> files)
    {
        var backups = new List<(string Backup, string Target)>();
        var placed = new List<string>();
        try
        {
            foreach (var (_, target) in files.Where(f => File.Exists(f.Target)))
            {
                var backup = TempName(target) + ".old";
                File.Move(target, backup);
                backups.Add((backup, target));
            }

            foreach (var (temp, target) in files)
            {
                BeforeRename?.Invoke(target);
                File.Move(temp, target);
                placed.Add(target);
            }
        }
        catch
        {
            foreach (var target in placed)
            {
                File.Delete(target);
            }

            foreach (var (backup, target) in backups)
            {
                File.Move(backup, target, overwrite: true);
            }

            throw;
        }

        foreach (var (backup, _) in backups)
        {
            File.Delete(backup);
        }
    }

    private static string TempName(string path) => AtomicFile.TempName(path);
}
