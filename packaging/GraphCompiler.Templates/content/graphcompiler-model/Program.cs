using GraphCompiler.Runtime.Symbol;
using GraphCompilerModel;
using TorchSharp;
using static TorchSharp.torch;

// TextClassifierModule is generated at build time from TextClassifier.cs.
torch.manual_seed(0);
using var model = new TextClassifierModule();
Console.WriteLine($"model {TextClassifierModule.Name}: {model.parameters().Count()} parameter tensors, buckets {string.Join(", ", TextClassifierModule.Buckets)}");

// A batch of random token ids in the first bucket (4 × 16); labels from a learnable rule (the first token's parity).
var bucket = TextClassifierModule.Buckets[0];
using var ids = torch.randint(1, 1000, new long[] { bucket.Batch, bucket.Seq }, dtype: ScalarType.Int64);
using var types = torch.zeros(new long[] { bucket.Batch, bucket.Seq }, dtype: ScalarType.Int64);
using var lengths = torch.full(new long[] { bucket.Batch }, bucket.Seq - 2, dtype: ScalarType.Int64);
using var labels = ids[TensorIndex.Colon, 0].remainder(3);

// Forward (inference).
model.eval();
using (torch.no_grad())
using (var scope = torch.NewDisposeScope())
{
    var logits = model.forward(ids, types, lengths);
    Console.WriteLine($"forward: logits [{string.Join(", ", logits.shape)}]");
}

// Two training steps: in train mode the forward runs the generated training graph and its generated backward.
model.train();
using var optimizer = torch.optim.AdamW(model.parameters(), lr: 1e-3);
for (var step = 1; step <= 2; step++)
{
    using var scope = torch.NewDisposeScope();
    optimizer.zero_grad();
    var loss = torch.nn.functional.cross_entropy(model.forward(ids, types, lengths), labels);
    loss.backward();
    optimizer.step();
    Console.WriteLine($"train step {step}: loss {loss.item<float>():F4}");
}

// Export as symbol + params, re-import as a SymbolBlock (the graph interpreter, no generated class) and compare.
model.eval();
var prefix = Path.Combine(AppContext.BaseDirectory, "export", TextClassifierModule.Name);
Directory.CreateDirectory(Path.GetDirectoryName(prefix)!);
var (symbolFile, paramsFile) = ModelExport.Export(model, prefix);
using var imported = SymbolBlock.Imports(symbolFile, new[] { "inputIds", "tokenTypes", "validLength" }, paramsFile);
using (torch.no_grad())
using (var scope = torch.NewDisposeScope())
{
    var expected = model.forward(ids, types, lengths);
    var actual = imported.Run(ids, types, lengths)[0];
    var difference = (actual - expected).abs().max().item<float>();
    Console.WriteLine($"export: {Path.GetFileName(symbolFile)} + {Path.GetFileName(paramsFile)}; re-imported, largest difference {difference:E2}");
    if (difference > 1e-4f)
    {
        Console.Error.WriteLine("the re-imported model disagrees with the generated one");
        return 1;
    }
}

Console.WriteLine("done");
return 0;
