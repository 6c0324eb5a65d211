using System.Text.Json;
using System.Text.Json.Serialization;

namespace Postmaster.Testing.Internal;

/// <summary>
/// Reads <c>status --json</c>, <c>shmem --json</c> and <c>spawn --json</c> (source-generated, camelCase). Tolerant of
/// what a later product version adds: unknown fields are skipped, and a state word the harness does not know reads
/// as <c>Unknown</c> rather than failing.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    Converters = [typeof(ServerStateConverter), typeof(WorkerStateConverter), typeof(BackendStateConverter)])]
[JsonSerializable(typeof(ClusterStatus))]
[JsonSerializable(typeof(ShmemReport))]
[JsonSerializable(typeof(SpawnAnswer))]
internal sealed partial class InspectionJson : JsonSerializerContext
{
    /// <summary>Parses <paramref name="json"/>; a malformed document is a <see cref="ClusterException"/> quoting it.</summary>
    public static T Parse<T>(string json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw new ClusterException($"{what} printed null:\n{json}");
        }
        catch (JsonException e)
        {
            throw new ClusterException($"{what} printed JSON the harness cannot read ({e.Message}):\n{json}", e);
        }
    }
}

/// <summary><c>spawn --json</c>'s answer.</summary>
internal sealed record SpawnAnswer(int Pid, int Slot, long Generation);

/// <summary>A string enum read by a fixed table; words it does not list read as <paramref name="unknown"/>.</summary>
internal abstract class WordConverter<T>(T unknown, params (string Word, T Value)[] words) : JsonConverter<T>
    where T : struct, Enum
{
    public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        string? text = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        foreach (var (word, value) in words)
            if (word == text)
                return value;
        return unknown;
    }

    public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options)
    {
        foreach (var (word, v) in words)
            if (EqualityComparer<T>.Default.Equals(v, value))
            {
                writer.WriteStringValue(word);
                return;
            }
        writer.WriteNullValue();
    }
}

internal sealed class ServerStateConverter() : WordConverter<ServerState>(ServerState.Unknown,
    ("starting", ServerState.Starting), ("ready", ServerState.Ready), ("stopping", ServerState.Stopping));

internal sealed class WorkerStateConverter() : WordConverter<WorkerState>(WorkerState.Unknown,
    ("pending", WorkerState.Pending), ("starting", WorkerState.Starting), ("running", WorkerState.Running),
    ("backoff", WorkerState.Backoff), ("stopped", WorkerState.Stopped), ("failed", WorkerState.Failed), ("done", WorkerState.Done));

internal sealed class BackendStateConverter() : WordConverter<BackendState>(BackendState.Unknown,
    ("starting", BackendState.Starting), ("running", BackendState.Running), ("idle (pool)", BackendState.Idle));
