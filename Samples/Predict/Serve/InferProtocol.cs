using System.Text.Json;
using System.Text.Json.Serialization;

namespace GraphCompiler.Samples.Predict.Serve;

/// <summary>A request the server refuses: the HTTP status and a message that names the field.</summary>
public sealed class InferRequestException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>An inference request of the Open Inference Protocol (KServe v2) for the sentence-pair classifier, read and
/// checked: N pairs, and which outputs to return.</summary>
public sealed record InferRequest(string? Id, string[] SentenceA, string[] SentenceB, bool WantLabel, bool WantProbability);

/// <summary>Reads <c>$inference_request</c> JSON. Read with <see cref="JsonDocument"/> rather than a bound type so that
/// every refusal names the field (<c>inputs[1] 'sentence_b': data[3] …</c>); JsonDocument needs no reflection.</summary>
public static class InferRequestReader
{
    public const string SentenceA = "sentence_a";
    public const string SentenceB = "sentence_b";
    public const string Label = "label";
    public const string Probability = "probability";

    public static InferRequest Read(ReadOnlyMemory<byte> body, int maxBatch)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            // The message gives the line and byte; invalid UTF-8 outside a string lands here too.
            throw Bad($"the request body is not valid JSON: {e.Message}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Bad($"the request body must be a JSON object (an inference request), not {Kind(root)}");
            }

            string? id = null;
            if (root.TryGetProperty("id", out var idElement))
            {
                id = idElement.ValueKind == JsonValueKind.String ? String(idElement, "id") : throw Bad($"'id' must be a string, not {Kind(idElement)}");
            }

            if (root.TryGetProperty("parameters", out var parameters) && parameters.ValueKind != JsonValueKind.Object)
            {
                throw Bad($"'parameters' must be an object, not {Kind(parameters)}");
            }

            if (!root.TryGetProperty("inputs", out var inputs))
            {
                throw Bad($"'inputs' is missing: this model takes two BYTES tensors '{SentenceA}' and '{SentenceB}' of shape [N]");
            }

            if (inputs.ValueKind != JsonValueKind.Array)
            {
                throw Bad($"'inputs' must be an array, not {Kind(inputs)}");
            }

            string[]? a = null, b = null;
            var index = 0;
            foreach (var input in inputs.EnumerateArray())
            {
                var field = $"inputs[{index++}]";
                if (input.ValueKind != JsonValueKind.Object)
                {
                    throw Bad($"{field} must be an object, not {Kind(input)}");
                }

                var name = RequiredString(input, "name", field);
                field = $"{field} '{name}'";
                if (name != SentenceA && name != SentenceB)
                {
                    throw Bad($"{field}: unknown input; this model takes '{SentenceA}' and '{SentenceB}' (BYTES, shape [N])");
                }

                if ((name == SentenceA ? a : b) is not null)
                {
                    throw Bad($"{field}: input given twice");
                }

                var sentences = ReadSentences(input, field, maxBatch);
                if (name == SentenceA)
                {
                    a = sentences;
                }
                else
                {
                    b = sentences;
                }
            }

            if (a is null || b is null)
            {
                throw Bad($"input '{(a is null ? SentenceA : SentenceB)}' is missing: this model takes '{SentenceA}' and '{SentenceB}' (BYTES, shape [N])");
            }

            if (a.Length != b.Length)
            {
                throw Bad($"input '{SentenceA}' has shape [{a.Length}] but '{SentenceB}' has shape [{b.Length}]: one pair per row, so N must match");
            }

            var (wantLabel, wantProbability) = ReadOutputs(root);
            return new InferRequest(id, a, b, wantLabel, wantProbability);
        }
    }

    private static string[] ReadSentences(JsonElement input, string field, int maxBatch)
    {
        var datatype = RequiredString(input, "datatype", field);
        if (datatype != "BYTES")
        {
            throw Bad($"{field}: datatype is '{datatype}', expected BYTES (UTF-8 text)");
        }

        if (input.TryGetProperty("parameters", out var parameters))
        {
            if (parameters.ValueKind != JsonValueKind.Object)
            {
                throw Bad($"{field}: 'parameters' must be an object, not {Kind(parameters)}");
            }

            if (parameters.TryGetProperty("binary_data_size", out _))
            {
                throw Bad($"{field}: the binary tensor data extension is not supported; send the sentences as JSON strings in 'data'");
            }
        }

        if (!input.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array)
        {
            throw Bad($"{field}: 'shape' must be an array of integers, e.g. [N]");
        }

        var dims = new List<long>();
        foreach (var dim in shape.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var d) || d < 0)
            {
                throw Bad($"{field}: 'shape' holds {dim.GetRawText()}, not a non-negative integer");
            }

            dims.Add(d);
        }

        if (dims.Count != 1)
        {
            throw Bad($"{field}: shape is [{string.Join(", ", dims)}], expected [N] (one sentence per row)");
        }

        var n = dims[0];
        if (n < 1 || n > maxBatch)
        {
            throw Bad($"{field}: shape is [{n}], N must be from 1 to {maxBatch} (the largest declared batch)");
        }

        if (!input.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
        {
            throw Bad($"{field}: 'data' must be an array of {n} strings");
        }

        var count = data.GetArrayLength();
        if (count != n)
        {
            throw Bad($"{field}: 'data' has {count} elements but shape [{n}] needs {n}");
        }

        var sentences = new string[n];
        var i = 0;
        foreach (var element in data.EnumerateArray())
        {
            var at = $"{field}: data[{i}]";
            if (element.ValueKind != JsonValueKind.String)
            {
                throw Bad($"{at} is {Kind(element)}, expected a string (BYTES)");
            }

            var text = String(element, at);
            if (string.IsNullOrWhiteSpace(text))
            {
                throw Bad($"{at} is empty");
            }

            sentences[i++] = text;
        }

        return sentences;
    }

    private static (bool Label, bool Probability) ReadOutputs(JsonElement root)
    {
        if (!root.TryGetProperty("outputs", out var outputs))
        {
            return (true, true);
        }

        if (outputs.ValueKind != JsonValueKind.Array)
        {
            throw Bad($"'outputs' must be an array, not {Kind(outputs)}");
        }

        bool label = false, probability = false;
        var index = 0;
        foreach (var output in outputs.EnumerateArray())
        {
            var field = $"outputs[{index++}]";
            if (output.ValueKind != JsonValueKind.Object)
            {
                throw Bad($"{field} must be an object, not {Kind(output)}");
            }

            var name = RequiredString(output, "name", field);
            switch (name)
            {
                case Label: label = true; break;
                case Probability: probability = true; break;
                default: throw Bad($"{field} '{name}': unknown output; this model has '{Label}' (INT64 [N]) and '{Probability}' (FP32 [N])");
            }
        }

        // An empty list asks for nothing in particular: all outputs, as when it is absent.
        return label || probability ? (label, probability) : (true, true);
    }

    private static string RequiredString(JsonElement element, string property, string field)
    {
        if (!element.TryGetProperty(property, out var value))
        {
            throw Bad($"{field}: '{property}' is missing");
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw Bad($"{field}: '{property}' must be a string, not {Kind(value)}");
        }

        return String(value, $"{field}: '{property}'");
    }

    /// <summary>The string, or a refusal naming the field when its bytes are not valid UTF-8 (or escape a lone
    /// surrogate): the parser checks structure, transcoding checks the text.</summary>
    private static string String(JsonElement element, string field)
    {
        try
        {
            return element.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw Bad($"{field} is not valid UTF-8 text");
        }
    }

    private static string Kind(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    private static InferRequestException Bad(string message) => new(400, message);
}

/// <summary><c>$inference_response</c>.</summary>
public sealed record InferResponse(
    [property: JsonPropertyName("model_name")] string ModelName,
    [property: JsonPropertyName("model_version")] string ModelVersion,
    [property: JsonPropertyName("id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Id,
    [property: JsonPropertyName("parameters")] InferResponseParameters Parameters,
    [property: JsonPropertyName("outputs")] IReadOnlyList<OutputTensor> Outputs);

/// <summary>The response's parameters: the bucket the request ran in, and which rows were cut to fit the longest
/// bucket (as training cut them: longest sentence first).</summary>
public sealed record InferResponseParameters(
    [property: JsonPropertyName("bucket")] string Bucket,
    [property: JsonPropertyName("batch_size")] int BatchSize,
    [property: JsonPropertyName("truncated"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Truncated,
    [property: JsonPropertyName("truncated_rows"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? TruncatedRows,
    [property: JsonPropertyName("max_tokens"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? MaxTokens);

/// <summary><c>$response_output</c>.</summary>
public sealed record OutputTensor(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("datatype")] string Datatype,
    [property: JsonPropertyName("shape")] long[] Shape,
    [property: JsonPropertyName("data")] TensorData Data);

/// <summary>A tensor's flat data, INT64 or FP32: written as a JSON array of numbers (floats at float precision, not
/// widened to doubles).</summary>
[JsonConverter(typeof(TensorDataConverter))]
public sealed class TensorData
{
    public long[]? Int64 { get; init; }

    public float[]? Fp32 { get; init; }
}

public sealed class TensorDataConverter : JsonConverter<TensorData>
{
    public override TensorData Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        throw new NotSupportedException("responses are only written");

    public override void Write(Utf8JsonWriter writer, TensorData value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var v in value.Int64 ?? [])
        {
            writer.WriteNumberValue(v);
        }

        foreach (var v in value.Fp32 ?? [])
        {
            writer.WriteNumberValue(v);
        }

        writer.WriteEndArray();
    }
}

/// <summary><c>$metadata_model_response</c>.</summary>
public sealed record ModelMetadata(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("versions")] IReadOnlyList<string> Versions,
    [property: JsonPropertyName("platform")] string Platform,
    [property: JsonPropertyName("inputs")] IReadOnlyList<TensorMetadata> Inputs,
    [property: JsonPropertyName("outputs")] IReadOnlyList<TensorMetadata> Outputs);

/// <summary><c>$metadata_tensor</c>; -1 is a variable dimension.</summary>
public sealed record TensorMetadata(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("datatype")] string Datatype,
    [property: JsonPropertyName("shape")] long[] Shape);

/// <summary><c>$metadata_server_response</c>.</summary>
public sealed record ServerMetadata(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("version")] string Version,
    [property: JsonPropertyName("extensions")] IReadOnlyList<string> Extensions);

/// <summary>The protocol's error object: <c>{"error": $string}</c>.</summary>
public sealed record ErrorResponse([property: JsonPropertyName("error")] string Error);

/// <summary>Source-generated serialization (NativeAOT: no reflection).</summary>
[JsonSourceGenerationOptions(WriteIndented = false)]
[JsonSerializable(typeof(InferResponse))]
[JsonSerializable(typeof(ModelMetadata))]
[JsonSerializable(typeof(ServerMetadata))]
[JsonSerializable(typeof(ErrorResponse))]
public sealed partial class ServeJsonContext : JsonSerializerContext
{
    /// <summary>The context the server writes with: text as it is (an apostrophe in a message stays one, not \u0027);
    /// the body is JSON, never embedded in HTML.</summary>
    public static ServeJsonContext Relaxed { get; } = new(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
