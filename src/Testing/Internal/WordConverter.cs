using System.Text.Json;
using System.Text.Json.Serialization;

namespace Postmaster.Testing.Internal;

/// <summary>A string enum read by a fixed table; words it does not list read as <paramref name="unknown"/>. The three
/// state enums of the inspection output follow, each its table.</summary>
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
