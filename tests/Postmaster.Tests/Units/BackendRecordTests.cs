using System.Text;
using Postmaster.Logging;
using Serilog.Events;
using Xunit;

namespace Postmaster.Tests.Units;

/// <summary>The collector's reading of a backend's JSON record (<see cref="BackendRecord"/>): every field of the
/// schema, wrong types as absent, anything that is not one JSON object refused (the collector then writes it as text),
/// and the timestamp read back exactly as the formatters write it.</summary>
public sealed class BackendRecordTests
{
    private static LogEvent? Parse(string json, int pid = 77) => Parse(Encoding.UTF8.GetBytes(json), pid);

    private static LogEvent? Parse(byte[] json, int pid = 77) => BackendRecord.TryRead(pid, json, out var r) ? r.ToLogEvent() : null;

    private static string Prop(LogEvent e, string name) => PgTextFormatter.Scalar(e, name);

    [Fact]
    public void Every_field_of_the_schema_is_read()
    {
        var e = Parse("""{"timestamp":"2026-12-03 14:05:06.789 UTC","pid":4242,"backend_type":"background worker","worker":"w1","slot":7,"error_severity":"WARNING","message":"disk \"x\" is slow","detail":"d","hint":"h","context":"c1\nc2"}""");
        Assert.NotNull(e);
        Assert.Equal(new DateTimeOffset(2026, 12, 3, 14, 5, 6, 789, TimeSpan.Zero), e.Timestamp);
        Assert.Equal("4242", Prop(e, ServerLog.PidProperty));
        Assert.Equal("background worker", Prop(e, ServerLog.BackendTypeProperty));
        Assert.Equal("w1", Prop(e, ServerLog.WorkerProperty));
        Assert.Equal("7", Prop(e, ServerLog.SlotProperty));
        Assert.Equal("WARNING", Prop(e, ServerLog.SeverityProperty));
        Assert.Equal(LogEventLevel.Warning, e.Level);
        Assert.Equal("disk \"x\" is slow", e.MessageTemplate.Text);
        Assert.Equal("d", Prop(e, ServerLog.DetailProperty));
        Assert.Equal("h", Prop(e, ServerLog.HintProperty));
        Assert.Equal("c1\nc2", Prop(e, ServerLog.ContextProperty));
    }

    [Fact]
    public void Missing_and_mistyped_fields_are_absent_and_defaults_apply()
    {
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        var e = Parse("""{"timestamp":12,"pid":"4242","backend_type":null,"worker":["a"],"slot":1.5,"error_severity":"LOUD","message":{"text":"x"},"detail":true}""");
        Assert.NotNull(e);
        Assert.True(e.Timestamp >= before, "a timestamp that is not ours is the time of arrival");
        Assert.Equal("77", Prop(e, ServerLog.PidProperty)); // the pipe's pid
        Assert.Equal("backend", Prop(e, ServerLog.BackendTypeProperty));
        Assert.Equal("", Prop(e, ServerLog.WorkerProperty));
        Assert.Equal("", Prop(e, ServerLog.SlotProperty));
        Assert.Equal("LOG", Prop(e, ServerLog.SeverityProperty));
        Assert.Equal("", e.MessageTemplate.Text);
        Assert.Equal("", Prop(e, ServerLog.DetailProperty));
    }

    [Fact]
    public void Unknown_keys_and_nested_values_are_skipped_a_repeated_key_counts_by_its_last_value_and_escapes_are_read()
    {
        var e = Parse("""{"extra":{"deep":[1,{"message":"no"}]},"message":"first","message":"second","\u0068int":"escaped key","detail":"tab\there"}""");
        Assert.NotNull(e);
        Assert.Equal("second", e.MessageTemplate.Text);
        Assert.Equal("escaped key", Prop(e, ServerLog.HintProperty));
        Assert.Equal("tab\there", Prop(e, ServerLog.DetailProperty));
        var cleared = Parse("""{"message":"a","message":null}""");
        Assert.Equal("", cleared!.MessageTemplate.Text);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("\"text\"")]
    [InlineData("{\"message\":\"a\"} {\"message\":\"b\"}")]
    [InlineData("{\"message\":\"a\"")]
    [InlineData("{\"message\":\"a\",}")]
    [InlineData("{\"message\" \"a\"}")]
    public void Anything_but_one_whole_json_object_is_refused(string text) => Assert.Null(Parse(text));

    [Fact]
    public void Invalid_utf8_in_a_value_is_refused_not_thrown()
    {
        byte[] bytes = [.. "{\"message\":\""u8, 0xC3, 0x28, .. "\"}"u8];
        Assert.Null(Parse(bytes));
    }

    [Fact]
    public void Deep_nesting_is_refused_not_thrown()
    {
        string deep = "{\"x\":" + new string('[', 200) + new string(']', 200) + "}";
        Assert.Null(Parse(deep));
    }

    [Theory]
    [InlineData("2026-02-29 00:00:00.000 UTC")] // not a leap year
    [InlineData("2026-13-01 00:00:00.000 UTC")]
    [InlineData("2026-12-01 24:00:00.000 UTC")]
    [InlineData("2026-12-01 12:00:00.000 CET")]
    [InlineData("2026-12-01T12:00:00.000 UTC")]
    [InlineData("2026-12-01 12:00:00.0x0 UTC")]
    [InlineData("2026-12-01 12:00:00.00 UTC")]
    public void A_timestamp_not_in_our_format_is_refused(string text) =>
        Assert.False(BackendRecord.TryParseTimestamp(text, out _));

    [Fact]
    public void The_timestamp_reads_back_what_the_formatter_writes()
    {
        var rng = new Random(5);
        for (int i = 0; i < 2000; i++)
        {
            var t = new DateTimeOffset(new DateTime(rng.NextInt64(DateTime.MinValue.Ticks, DateTime.MaxValue.Ticks) / TimeSpan.TicksPerMillisecond * TimeSpan.TicksPerMillisecond, DateTimeKind.Utc));
            string text = LogTime.Format(t);
            Assert.Equal(t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture) + " UTC", text);
            Assert.True(BackendRecord.TryParseTimestamp(text, out var back), text);
            Assert.Equal(t, back);
        }
    }

    [Theory]
    [InlineData("""{"timestamp":"2026-12-03 14:05:06.789 UTC","pid":42,"error_severity":"WARNING","message":"two\nlines","detail":"d","hint":"h","context":"c1\nc2"}""")]
    [InlineData("""{"message":"no timestamp, no pid"}""")]
    [InlineData("""{"timestamp":"not ours","error_severity":"FATAL","message":"m","context":"\r\n\nx\r"}""")]
    public void The_text_written_from_a_records_fields_is_the_text_of_its_log_event(string json)
    {
        Assert.True(BackendRecord.TryRead(9, Encoding.UTF8.GetBytes(json), out var record));
        var direct = new StringWriter();
        PgTextFormatter.Format(record, direct);
        var viaEvent = new StringWriter();
        new PgTextFormatter().Format(record.ToLogEvent(), viaEvent);
        Assert.Equal(viaEvent.ToString(), direct.ToString());
        Assert.EndsWith("\n", direct.ToString());
    }
}
