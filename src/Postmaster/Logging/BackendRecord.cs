using System.Text.Json;
using Serilog.Events;
using Serilog.Parsing;

namespace Postmaster.Logging;

/// <summary>
/// A backend's log record from the pipe (one JSON object in the schema of docs/logging.md), read in one forward pass
/// with <see cref="Utf8JsonReader"/>: no document is built, unknown keys and nested values are skipped, a key given
/// twice counts by its last value, and a field of the wrong type counts as absent. The collector reads every record
/// this way, so it is the collector's hot path (tens of thousands of records a second under a storm); the text log is
/// written from the fields, and a log event (<see cref="RecordFields.ToLogEvent"/>) is built only for the JSON file.
/// </summary>
internal static class BackendRecord
{
    /// <summary>The record's fields, read from <paramref name="json"/>; false when it is not one JSON object (then the
    /// caller writes it as text). Never throws for any input.</summary>
    public static bool TryRead(int pipePid, ReadOnlySpan<byte> json, out RecordFields record)
    {
        record = default;
        var text = new string?[TextFields]; // by Field: the string fields; Pid and Slot are numbers
        int? pid = null, slot = null;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                Field field = FieldOf(ref reader);
                if (!reader.Read())
                    return false;
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                    reader.Skip();
                // A field of the wrong type (or null) is absent, whatever an earlier key of the same name said.
                bool isString = reader.TokenType == JsonTokenType.String;
                switch (field)
                {
                    case Field.Unknown:
                        break;
                    case Field.Pid:
                        pid = reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int p) ? p : null;
                        break;
                    case Field.Slot:
                        slot = reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int n) ? n : null;
                        break;
                    default:
                        text[(int)field] = isString ? reader.GetString() : null;
                        break;
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
                return false; // not one whole object (a second value after it, or damaged)
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException or FormatException)
        {
            return false;
        }
        var severity = SeverityText.TryParseLabel(text[(int)Field.Severity] ?? "", out var sv) ? sv : Severity.Log;
        string? timestamp = text[(int)Field.Timestamp], backendType = text[(int)Field.BackendType];
        bool ours = TryParseTimestamp(timestamp, out var t);
        record = new RecordFields(ours ? t : DateTimeOffset.UtcNow, ours ? timestamp : null, pid ?? pipePid,
            backendType is { Length: > 0 } ? backendType : "backend", text[(int)Field.Worker], slot, severity,
            text[(int)Field.Message] ?? "", NullIfEmpty(text[(int)Field.Detail]), NullIfEmpty(text[(int)Field.Hint]),
            NullIfEmpty(text[(int)Field.Context]));
        return true;
    }

    private static string? NullIfEmpty(string? text) => text is { Length: > 0 } ? text : null;

    private enum Field { Unknown, Pid, Slot, Timestamp, BackendType, Worker, Severity, Message, Detail, Hint, Context }

    private const int TextFields = (int)Field.Context + 1;

    private static Field FieldOf(ref Utf8JsonReader reader)
    {
        // The schema's keys are plain ASCII: an escaped key (\u0074imestamp) is compared after unescaping.
        if (reader.ValueIsEscaped)
            return FieldOf(System.Text.Encoding.UTF8.GetBytes(reader.GetString() ?? ""));
        return FieldOf(reader.ValueSpan);
    }

    private static Field FieldOf(ReadOnlySpan<byte> key) => key switch
    {
        _ when key.SequenceEqual("timestamp"u8) => Field.Timestamp,
        _ when key.SequenceEqual("pid"u8) => Field.Pid,
        _ when key.SequenceEqual("backend_type"u8) => Field.BackendType,
        _ when key.SequenceEqual("worker"u8) => Field.Worker,
        _ when key.SequenceEqual("slot"u8) => Field.Slot,
        _ when key.SequenceEqual("error_severity"u8) => Field.Severity,
        _ when key.SequenceEqual("message"u8) => Field.Message,
        _ when key.SequenceEqual("detail"u8) => Field.Detail,
        _ when key.SequenceEqual("hint"u8) => Field.Hint,
        _ when key.SequenceEqual("context"u8) => Field.Context,
        _ => Field.Unknown,
    };

    /// <summary>Our timestamp, <c>yyyy-MM-dd HH:mm:ss.fff UTC</c> exactly, as a UTC time; false for anything else
    /// (then the collector stamps the record with its own time of arrival).</summary>
    internal static bool TryParseTimestamp(string? text, out DateTimeOffset time)
    {
        time = default;
        if (text is not { Length: 27 } || text[4] != '-' || text[7] != '-' || text[10] != ' ' || text[13] != ':'
            || text[16] != ':' || text[19] != '.' || !text.EndsWith(" UTC", StringComparison.Ordinal))
            return false;
        if (!Digits(text, 0, 4, out int year) || !Digits(text, 5, 2, out int month) || !Digits(text, 8, 2, out int day)
            || !Digits(text, 11, 2, out int hour) || !Digits(text, 14, 2, out int minute)
            || !Digits(text, 17, 2, out int second) || !Digits(text, 20, 3, out int ms))
            return false;
        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23
            || minute > 59 || second > 59)
            return false;
        time = new DateTimeOffset(year, month, day, hour, minute, second, ms, TimeSpan.Zero);
        return true;
    }

    private static bool Digits(string text, int start, int count, out int value)
    {
        value = 0;
        for (int i = start; i < start + count; i++)
        {
            int d = text[i] - '0';
            if ((uint)d > 9)
                return false;
            value = value * 10 + d;
        }
        return true;
    }
}

/// <summary>A backend's record as read from the pipe (<see cref="BackendRecord.TryRead"/>): what the text log needs
/// directly, and the log event for the other destinations.</summary>
/// <param name="TimestampText">The record's own timestamp text when it was in our format (written as it came).</param>
internal readonly record struct RecordFields(DateTimeOffset Time, string? TimestampText, int Pid, string BackendType,
    string? Worker, int? Slot, Severity Severity, string Message, string? Detail, string? Hint, string? Context)
{
    public LogEvent ToLogEvent()
    {
        var props = new List<LogEventProperty>(8)
        {
            new(ServerLog.SeverityProperty, new ScalarValue(Severity.Label())),
            new(ServerLog.PidProperty, new ScalarValue(Pid)),
            new(ServerLog.BackendTypeProperty, new ScalarValue(BackendType)),
        };
        Add(props, ServerLog.WorkerProperty, Worker);
        Add(props, ServerLog.DetailProperty, Detail);
        Add(props, ServerLog.HintProperty, Hint);
        Add(props, ServerLog.ContextProperty, Context);
        if (Slot is int s)
            props.Add(new LogEventProperty(ServerLog.SlotProperty, new ScalarValue(s)));
        return new LogEvent(Time, Severity.ToSerilog(), null, new MessageTemplate([new TextToken(Message)]), props);
    }

    private static void Add(List<LogEventProperty> props, string name, string? value)
    {
        if (value is { Length: > 0 })
            props.Add(new LogEventProperty(name, new ScalarValue(value)));
    }
}
