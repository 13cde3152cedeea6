using System.Buffers.Binary;
using System.Text;
using GraphCompiler.Runtime.Onnx;
using GraphCompiler.Runtime.Symbol;
using GraphCompiler.Runtime.Weights;
using GraphCompiler.Tests.Declarations;
using static TorchSharp.torch;

namespace GraphCompiler.Fuzz;

/// <summary>The seed corpora (Corpus/&lt;reader&gt;/), written by the project's own writers from a small test model
/// (num_linear: six linears, 1.3 K parameters), so they stay small and follow the formats as exported. The text
/// seeds are MRPC-like lines made up here (MRPC itself is not the project's to commit).</summary>
public static class Seeds
{
    public static void Write(string root)
    {
        manual_seed(0);
        var work = Directory.CreateTempSubdirectory("graphcompiler-seeds").FullName;
        try
        {
            using var module = new LinearModelModule();
            var (symbolFile, paramsFile) = ModelExport.Export(module, Path.Combine(work, "linear"));
            var tensors = ModelExport.ModuleTensors(module);
            using var mixed = new DisposableTensors(new()
            {
                ["emb.weight"] = arange(12, dtype: ScalarType.Float32).reshape(3, 4),
                ["ids.data"] = tensor(new long[] { 1, -2, 3 }),
                ["mask.data"] = tensor(new byte[] { 0, 1 }),
                ["q.weight"] = tensor(new sbyte[] { -128, 0, 127 }),
                ["empty.bias"] = empty(0, ScalarType.Float32),
                ["scalar.value"] = tensor(0.5),
            });

            var dir = Clean(root, "safetensors");
            File.Copy(paramsFile, Path.Combine(dir, "linear-export.safetensors"));
            SafeTensors.Write(Path.Combine(dir, "mixed-dtypes.safetensors"), mixed.Tensors, new Dictionary<string, string> { ["model"] = "fuzz", ["note"] = "seed" });

            dir = Clean(root, "params");
            MxNetParams.Write(Path.Combine(dir, "linear.params"), tensors);
            MxNetParams.Write(Path.Combine(dir, "mixed-dtypes.params"), mixed.Tensors.Where(t => t.Value.dtype != ScalarType.Bool));

            dir = Clean(root, "onnx");
            var onnx = Path.Combine(dir, "linear.onnx");
            ModelExport.ExportOnnx(module, onnx);
            OnnxDynamicQuantizer.Quantize(onnx, Path.Combine(dir, "linear-int8.onnx"));

            dir = Clean(root, "symbol");
            File.WriteAllBytes(Path.Combine(dir, "linear.bin"), SymbolInput(File.ReadAllBytes(symbolFile), File.ReadAllBytes(paramsFile)));

            dir = Clean(root, "tsv");
            File.WriteAllText(Path.Combine(dir, "mrpc-like.tsv"), "\uFEFF" + Header + string.Concat(Rows), new UTF8Encoding(false));
            File.WriteAllText(Path.Combine(dir, "crlf-bad-rows.tsv"), Header.Replace("\n", "\r\n") + Rows[0].Replace("\n", "\r\n")
                + "2\t3\t4\tonly three\n" + "1\t5\t6\t\"Quoted\" a\t\n" + "x\t7\t8\tlabel x\tis not 0 or 1\n", new UTF8Encoding(false));

            dir = Clean(root, "vocab");
            File.WriteAllText(Path.Combine(dir, "small-vocab.txt"), Harnesses.SmallVocab, new UTF8Encoding(false));
            File.WriteAllText(Path.Combine(dir, "crlf-cased.txt"), Harnesses.SmallVocab.Replace("\n", "\r\n").Replace("cafe", "Café"), new UTF8Encoding(false));

            dir = Clean(root, "predict");
            File.WriteAllText(Path.Combine(dir, "labelled.tsv"), Header + string.Concat(Rows), new UTF8Encoding(false));
            File.WriteAllText(Path.Combine(dir, "indexed-bad-rows.tsv"), Header + "0\t1\t2\tThe market rose.\tShares rose.\n" + "1\t3\t4\t\t\n" + "2\t5\t6\tno tab after\n", new UTF8Encoding(false));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private const string Header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n";

    private static readonly string[] Rows =
    [
        "1\t101\t102\tThe company said its shares rose 5 percent in the year.\tShares of the company were up 5 percent, it said.\n",
        "0\t103\t104\tHe was in the market on Monday.\tShe said that \"it\" was naïve — a café (中文).\n",
        "1\t105\t106\tAs of 9:30, the index was 2.3% higher.\tThe index rose 2.3 % by 9:30 a.m.\n",
    ];

    /// <summary>The symbol harness's input: u32 little-endian length of the symbol JSON, the JSON, the params.</summary>
    public static byte[] SymbolInput(byte[] symbolJson, byte[] parameters)
    {
        var bytes = new byte[4 + symbolJson.Length + parameters.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)symbolJson.Length);
        symbolJson.CopyTo(bytes, 4);
        parameters.CopyTo(bytes, 4 + symbolJson.Length);
        return bytes;
    }

    private static string Clean(string root, string reader)
    {
        var dir = Path.Combine(root, reader);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        return Directory.CreateDirectory(dir).FullName;
    }

    private sealed class DisposableTensors(Dictionary<string, Tensor> tensors) : IDisposable
    {
        public Dictionary<string, Tensor> Tensors { get; } = tensors;

        public void Dispose()
        {
            foreach (var t in Tensors.Values)
            {
                t.Dispose();
            }
        }
    }
}
