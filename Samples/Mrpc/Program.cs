using System.CommandLine;
using GraphCompiler.Runtime.Training;
using GraphCompiler.Samples.Mrpc;

// One source for the defaults: the settings record the run reads.
var defaults = new MrpcSettings();

var data = new Option<DirectoryInfo?>("--data") { Description = "Folder with GLUE MRPC train.tsv and dev.tsv (default: the built-in demo pairs, not MRPC)" };
var preset = new Option<string>("--preset") { Description = "full: train.tsv → dev.tsv, GluonNLP's script; tutorial: train and evaluate on dev.tsv, Adam lr 5e-6", DefaultValueFactory = _ => defaults.Preset };
var model = new Option<string>("--model") { Description = "minilm, minilm_meanpool (pools the mean of the tokens, as all-MiniLM-L6-v2 was trained), bert_12_768_12 or bert_24_1024_16 (BERT needs --weights)", DefaultValueFactory = _ => defaults.Model };
var weights = new Option<string?>("--weights") { Description = "Pretrained checkpoint: .safetensors (HF), .params (GluonNLP) or .onnx" };
var vocab = new Option<string?>("--vocab") { Description = "vocab.txt of the checkpoint (default: bert-base-uncased's, shipped with MiniLM)" };
var epochs = new Option<int?>("--epochs") { Description = "Epochs (default: full 5, as GluonNLP's tuned BERT run; tutorial 3)" };
var trainLimit = new Option<int?>("--train-limit") { Description = "Train on the first N training pairs only (a short run)" };
var int8 = new Option<bool>("--int8") { Description = "After training: calibrate, quantize to int8, export (symbol + params, ONNX), re-import, evaluate and time", DefaultValueFactory = _ => defaults.Int8 };
var calibration = new Option<string>("--calibration") { Description = "naive, percentile (99.99th of |x|), entropy, or customize (the tutorial's: GluonNLP's BertLayerCollector clipping)", DefaultValueFactory = _ => defaults.Calibration };
var calibrationBatches = new Option<int>("--calibration-batches") { Description = "Dev batches of 32 to calibrate on", DefaultValueFactory = _ => defaults.CalibrationBatches };
var deploy = new Option<string?>("--deploy") { Description = "The published predict binary to run on dev.tsv with the int8 export (scripts/publish-predict.sh)" };
var lr = new Option<double?>("--lr") { Description = "Peak learning rate (default: tutorial 5e-6; full 1e-4 for MiniLM, 2e-5 for BERT as GluonNLP)" };
var reinitLayers = new Option<int>("--reinit-layers") { Description = "Re-initialise the top N encoder layers before fine-tuning", DefaultValueFactory = _ => defaults.ReinitLayers };
var reinitPooler = new Option<bool?>("--reinit-pooler") { Description = "Re-initialise the pooler before fine-tuning (default: yes for the full recipe, as all-MiniLM-L6-v2's pooler was never trained; no for the tutorial)" };
var swapPairs = new Option<bool?>("--swap-pairs") { Description = "Also train on every pair with its sentences swapped (a paraphrase is symmetric), doubling the training set" };
var layerDecay = new Option<double?>("--layer-decay") { Description = "Layer-wise learning-rate decay: each encoder layer trains at this factor times the rate of the one above (1: off)" };
var seed = new Option<int>("--seed") { Description = "Seed for shuffling and dropout", DefaultValueFactory = _ => defaults.Seed };
var output = new Option<string>("--out") { Description = "Output folder (checkpoints, curves, model, report.json)", DefaultValueFactory = _ => defaults.Output };
var resume = new Option<bool>("--resume") { Description = "Continue from the latest checkpoint in --out" };
var logEvery = new Option<int>("--log-every") { Description = "Log every N batches", DefaultValueFactory = _ => defaults.LogEvery };
var skipBadRows = new Option<bool>("--skip-bad-rows") { Description = "Leave out bad TSV rows (each listed with its line and problem) instead of stopping at the first" };
var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Also checkpoint every N optimizer steps (0: at each epoch's end only)", DefaultValueFactory = _ => defaults.CheckpointEvery };
var timingRuns = new Option<int>("--timing-runs") { Description = "Timed 32×128 batches per engine in the int8 stage (0: no timing)", DefaultValueFactory = _ => defaults.TimingRuns };
var progress = new Option<ProgressMode>("--progress") { Description = "Auto, Bar, Lines or None", DefaultValueFactory = _ => defaults.Progress };

var root = new RootCommand("Fine-tune pretrained BERT on MRPC (paraphrase or not) with the generated forward and backward.")
{
    data, preset, model, weights, vocab, epochs, trainLimit, int8, calibration, calibrationBatches, deploy, lr, reinitLayers, reinitPooler, swapPairs, layerDecay, seed, output, resume, skipBadRows, checkpointEvery, timingRuns, logEvery, progress,
};
root.SetAction(parse =>
{
    var settings = new MrpcSettings
    {
        DataDirectory = parse.GetValue(data)?.FullName,
        Preset = parse.GetValue(preset)!,
        Model = parse.GetValue(model)!,
        Weights = parse.GetValue(weights),
        Vocab = parse.GetValue(vocab),
        Epochs = parse.GetValue(epochs),
        TrainLimit = parse.GetValue(trainLimit),
        Int8 = parse.GetValue(int8),
        Calibration = parse.GetValue(calibration)!,
        CalibrationBatches = parse.GetValue(calibrationBatches),
        DeployExecutable = parse.GetValue(deploy),
        LearningRate = parse.GetValue(lr),
        ReinitLayers = parse.GetValue(reinitLayers),
        ReinitPooler = parse.GetValue(reinitPooler),
        SwapPairs = parse.GetValue(swapPairs),
        LayerDecay = parse.GetValue(layerDecay),
        Seed = parse.GetValue(seed),
        Output = parse.GetValue(output)!,
        Resume = parse.GetValue(resume),
        SkipBadRows = parse.GetValue(skipBadRows),
        CheckpointEvery = parse.GetValue(checkpointEvery),
        TimingRuns = parse.GetValue(timingRuns),
        LogEvery = parse.GetValue(logEvery),
        Progress = parse.GetValue(progress),
    };
    try
    {
        MrpcRun.Run(settings, Console.Out);
        return 0;
    }
    catch (Exception ex) when (ex is FileNotFoundException or ArgumentException or IOException or InvalidDataException or TrainingDivergedException or GraphCompiler.Runtime.Symbol.SymbolFileException
                                   or GraphCompiler.Runtime.Weights.WeightLoadException or GraphCompiler.Runtime.Data.DataFormatException)
    {
        Console.Error.WriteLine("error: " + ex.Message);
        return 1;
    }
});
return root.Parse(args).Invoke();
