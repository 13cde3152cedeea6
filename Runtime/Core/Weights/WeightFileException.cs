namespace GraphCompiler.Runtime.Weights;

/// <summary>A weight file that cannot be read as what it claims to be; the message names the file and the problem.</summary>
public sealed class WeightFileException : IOException
{
    public WeightFileException(string file, string problem, Exception? inner = null)
        : base($"{file}: {problem}", inner)
    {
        File = file;
        Problem = problem;
    }

    public string File { get; }

    public string Problem { get; }
}
