using System.Collections;
using System.Text;

namespace GraphCompiler.Runtime.Data;

/// <summary>How a <see cref="TsvDataset"/> splits and selects (GluonNLP <c>TSVDataset</c>'s arguments).</summary>
public sealed record TsvOptions
{
    /// <summary>The field separator. No quote processing: a <c>"</c> is an ordinary character (MRPC has raw ones).</summary>
    public char Separator { get; init; } = '\t';

    /// <summary>Lines discarded at the start of the file (a header), GluonNLP's <c>num_discard_samples</c>.</summary>
    public int NumDiscardSamples { get; init; }

    /// <summary>The fields kept, in this order (GluonNLP's <c>field_indices</c>); null keeps every field.</summary>
    public IReadOnlyList<int>? FieldIndices { get; init; }

    public BadRows BadRows { get; init; } = BadRows.Throw;
}

/// <summary>One row of a TSV file: its 1-based line number in the file and the selected fields.</summary>
public readonly record struct TsvRow(int Line, string[] Fields);

/// <summary>A tab-separated text file read as a stream of rows: UTF-8 with or without a byte-order mark, LF or CRLF
/// line ends, header lines discarded, fields selected. The file is read in 64 KiB blocks and each line is decoded on its
/// own with a throwing UTF-8 decoder, so invalid UTF-8 is reported with its line number and a large file is never held
/// in memory. Under <see cref="BadRows.Skip"/>, bad rows are listed in <see cref="Skipped"/> (filled as enumeration
/// proceeds; reset at each enumeration).</summary>
public sealed class TsvDataset : IEnumerable<TsvRow>
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private readonly Func<Stream> _open;
    private readonly int _minFields;
    private List<SkippedRow> _skipped = [];

    public TsvDataset(string source, Func<Stream> open, TsvOptions? options = null)
    {
        Source = source;
        _open = open;
        Options = options ?? new TsvOptions();
        if (Options.NumDiscardSamples < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "NumDiscardSamples must be ≥ 0");
        }

        if (Options.FieldIndices is { } indices && indices.Any(i => i < 0))
        {
            throw new ArgumentOutOfRangeException(nameof(options), "field indices must be ≥ 0");
        }

        _minFields = Options.FieldIndices is { Count: > 0 } f ? f.Max() + 1 : 1;
    }

    /// <summary>A file on disk; the path is the source named in errors.</summary>
    public static TsvDataset FromFile(string path, TsvOptions? options = null) =>
        new(path, () => new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan), options);

    public string Source { get; }

    public TsvOptions Options { get; }

    /// <summary>Rows skipped by the last (or current) enumeration under <see cref="BadRows.Skip"/>.</summary>
    public IReadOnlyList<SkippedRow> Skipped => _skipped;

    /// <summary>Lines in the file, header included, as counted by the last complete enumeration.</summary>
    public int LinesRead { get; private set; }

    public IEnumerator<TsvRow> GetEnumerator()
    {
        _skipped = [];
        LinesRead = 0;
        using var stream = _open();
        var block = new byte[64 * 1024];
        var line = new byte[1024];
        var length = 0;
        var number = 0;
        int read;
        while ((read = stream.Read(block, 0, block.Length)) > 0)
        {
            var start = 0;
            while (start < read)
            {
                var newline = Array.IndexOf(block, (byte)'\n', start, read - start);
                var end = newline < 0 ? read : newline;
                Append(ref line, ref length, block.AsSpan(start, end - start));
                start = end + 1;
                if (newline < 0)
                {
                    break;
                }

                number++;
                if (ParseLine(line.AsSpan(0, length), number) is { } row)
                {
                    yield return row;
                }

                length = 0;
            }
        }

        if (length > 0)
        {
            number++;
            if (ParseLine(line.AsSpan(0, length), number) is { } row)
            {
                yield return row;
            }
        }

        LinesRead = number;
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private static void Append(ref byte[] line, ref int length, ReadOnlySpan<byte> bytes)
    {
        if (length + bytes.Length > line.Length)
        {
            Array.Resize(ref line, Math.Max(line.Length * 2, length + bytes.Length));
        }

        bytes.CopyTo(line.AsSpan(length));
        length += bytes.Length;
    }

    private TsvRow? ParseLine(ReadOnlySpan<byte> bytes, int number)
    {
        if (number <= Options.NumDiscardSamples)
        {
            return null;
        }

        if (number == 1 && bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            bytes = bytes[3..];
        }

        if (bytes.Length > 0 && bytes[^1] == (byte)'\r')
        {
            bytes = bytes[..^1];
        }

        string text;
        try
        {
            text = StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            return Bad(number, $"invalid UTF-8 at byte {e.Index} of the line");
        }

        var fields = text.Split(Options.Separator);
        if (fields.Length < _minFields)
        {
            return Bad(number, $"too few fields: found {fields.Length}, need at least {_minFields} (separated by {Describe(Options.Separator)})");
        }

        if (Options.FieldIndices is { } indices)
        {
            var selected = new string[indices.Count];
            for (var i = 0; i < selected.Length; i++)
            {
                selected[i] = fields[indices[i]];
            }

            fields = selected;
        }

        return new TsvRow(number, fields);
    }

    private TsvRow? Bad(int line, string problem)
    {
        if (Options.BadRows == BadRows.Throw)
        {
            throw new DataFormatException(Source, line, problem);
        }

        _skipped.Add(new SkippedRow(line, problem));
        return null;
    }

    private static string Describe(char c) => c switch
    {
        '\t' => "tabs",
        ',' => "commas",
        _ => $"'{c}'",
    };
}
