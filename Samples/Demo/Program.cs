using GraphCompiler.Runtime;
using GraphCompiler.Samples.Demo;
using TorchSharp;
using static TorchSharp.torch;

var dumpIr = args.Contains("--dump-ir");
torch.manual_seed(0);
using var model = new TinyEncoderModule();
model.eval();
Console.WriteLine($"model {TinyEncoderModule.Name}: {model.parameters().Count()} parameter tensors, buckets {string.Join(", ", TinyEncoderModule.Buckets)}");
if (dumpIr)
{
    Console.WriteLine(TinyEncoderModule.IrText(IrStage.Lowered));
    Console.WriteLine(TinyEncoderModule.IrText(IrStage.Optimized));
}

foreach (var bucket in TinyEncoderModule.Buckets)
{
    using var scope = torch.NewDisposeScope();
    var ids = torch.randint(0, 100, new long[] { bucket.Batch, bucket.Seq }, dtype: ScalarType.Int64);
    var types = torch.zeros(new long[] { bucket.Batch, bucket.Seq }, dtype: ScalarType.Int64);
    var lengths = torch.full(new long[] { bucket.Batch }, bucket.Seq - 2, dtype: ScalarType.Int64);
    using var _ = torch.no_grad();
    var logits = model.forward(ids, types, lengths);
    Console.WriteLine($"bucket {bucket}: logits [{string.Join(", ", logits.shape)}]");
}
