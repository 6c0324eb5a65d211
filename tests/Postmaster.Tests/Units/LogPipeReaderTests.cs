using System.Buffers.Binary;
using System.Text;
using Postmaster.Shmem.Text;
using Xunit;

namespace Postmaster.Tests.Units;

/// <summary>The log pipe's reader against what processes can really write into it: interleaved frames, text with NULs,
/// damaged headers, a process that dies mid-record and whose pid comes back, records over the limit.</summary>
public sealed class LogPipeReaderTests
{
    private static byte[] Frame(int pid, byte kind, string payload)
    {
        var body = Encoding.UTF8.GetBytes(payload);
        var frame = new byte[LogPipe.HeaderBytes + body.Length];
        BinaryPrimitives.WriteUInt16LittleEndian(frame.AsSpan(2), (ushort)body.Length);
        BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(4), pid);
        frame[8] = kind;
        body.CopyTo(frame, LogPipe.HeaderBytes);
        return frame;
    }

    private static string Describe(LogPipeItem i) =>
        i.Record is { } r ? $"record {i.Pid}: {Encoding.UTF8.GetString(r)}" : $"text {i.Pid}: {i.Text}";

    private static List<string> Feed(LogPipeReader reader, params byte[][] chunks) =>
        chunks.SelectMany(c => reader.Feed(c)).Select(Describe).ToList();

    [Fact]
    public void Frames_of_two_processes_interleave_and_text_between_them_stays_text()
    {
        var reader = new LogPipeReader();
        var items = Feed(reader,
            Frame(1, LogPipe.Begin, "{\"a\":"), Frame(2, LogPipe.Single, "{\"b\":2}"), Encoding.UTF8.GetBytes("plain line\n"),
            Frame(1, LogPipe.End, "1}"));
        Assert.Equal(["record 2: {\"b\":2}", "text 0: plain line", "record 1: {\"a\":1}"], items);
    }

    [Fact]
    public void A_NUL_in_text_or_a_damaged_header_is_skipped_and_reading_goes_on()
    {
        var reader = new LogPipeReader();
        var bad = Frame(3, (byte)'x', "zz"); // not a frame kind
        var items = Feed(reader, Encoding.UTF8.GetBytes("a\0b\n"), [0, (byte)'c', (byte)'\n'], bad, Encoding.UTF8.GetBytes("\n"),
            Frame(4, LogPipe.Single, "{}"));
        Assert.Contains("record 4: {}", items);
        Assert.Contains("text 0: a", items);
        Assert.Contains("text 0: b", items);
        Assert.Contains("text 0: c", items);
        Assert.DoesNotContain(reader.Flush(), i => i.Record is not null);
    }

    [Fact]
    public void A_record_left_unfinished_by_a_dead_process_is_dropped_when_its_pid_starts_a_new_one()
    {
        var reader = new LogPipeReader();
        var items = Feed(reader, Frame(7, LogPipe.Begin, "{\"old\":"), Frame(7, LogPipe.Single, "{\"new\":1}"));
        Assert.Equal(2, items.Count);
        Assert.StartsWith("text 7: an incomplete log record of PID 7", items[0]);
        Assert.Equal("record 7: {\"new\":1}", items[1]);
        items = Feed(reader, Frame(7, LogPipe.Begin, "{\"x\":"), Frame(7, LogPipe.Begin, "{\"y\":"), Frame(7, LogPipe.End, "2}"));
        Assert.Equal("record 7: {\"y\":2}", items[^1]);
        Assert.Empty(reader.Flush());
    }

    [Fact]
    public void A_record_over_the_limit_is_cut_there_and_stays_cut()
    {
        var reader = new LogPipeReader();
        var chunk = new string('x', LogPipe.MaxPayload);
        var frames = new List<byte[]> { Frame(9, LogPipe.Begin, chunk) };
        for (int i = 0; i < LogPipeReader.MaxRecord / LogPipe.MaxPayload + 2; i++)
            frames.Add(Frame(9, LogPipe.More, chunk));
        frames.Add(Frame(9, LogPipe.End, "tail"));
        var items = frames.SelectMany(f => reader.Feed(f)).ToList();
        var record = Assert.Single(items).Record!;
        Assert.True(record.Length <= LogPipeReader.MaxRecord);
        Assert.DoesNotContain("tail", Encoding.UTF8.GetString(record));
    }

    [Fact]
    public void Unfinished_records_of_many_processes_are_bounded()
    {
        var reader = new LogPipeReader();
        var items = new List<LogPipeItem>();
        for (int pid = 1; pid <= LogPipeReader.MaxPartialRecords + 10; pid++)
            items.AddRange(reader.Feed(Frame(pid, LogPipe.Begin, "{")));
        Assert.Equal(10, items.Count(i => i.Text?.StartsWith("an incomplete log record", StringComparison.Ordinal) == true));
        Assert.Equal(LogPipeReader.MaxPartialRecords, reader.Flush().Count);
    }

    [Fact]
    public void What_a_writer_sends_reads_back_whole_in_every_size()
    {
        var (read, write) = Postmaster.Shmem.Os.ProcessSpawner.CreatePipe();
        using (read)
        using (write)
        {
            var reader = new LogPipeReader();
            foreach (int size in new[] { 0, 1, LogPipe.MaxPayload - 1, LogPipe.MaxPayload, LogPipe.MaxPayload + 1, 3 * LogPipe.MaxPayload + 5 })
            {
                var record = Encoding.UTF8.GetBytes(new string('r', size));
                var got = new List<LogPipeItem>();
                var writer = new Thread(() => LogPipe.WriteRecord(write.Fd, 42, record));
                writer.Start();
                var buffer = new byte[65536];
                while (got.Count == 0)
                    got.AddRange(reader.Feed(buffer.AsSpan(0, Postmaster.Shmem.Os.ProcessSpawner.Read(read.Fd, buffer))));
                writer.Join();
                Assert.Equal(record, Assert.Single(got).Record);
            }
        }
    }
}

/// <summary>What the collector does with a record that is not one of ours: it is logged as text, never an exception
/// (an exception there would end the postmaster).</summary>
public sealed class ServerLogRecordTests
{
    [Theory]
    [InlineData("1")]
    [InlineData("[]")]
    [InlineData("\"text\"")]
    [InlineData("{\"pid\":\"x\",\"slot\":null,\"message\":5}")]
    [InlineData("{\"message\":\"\\ud800\"}")]
    [InlineData("{\"pid\":1e99}")]
    [InlineData("{not json")]
    public void A_foreign_or_damaged_record_is_written_as_text_without_an_exception(string json)
    {
        var dir = Directory.CreateTempSubdirectory("pm-serverlog-").FullName;
        try
        {
            using var log = new Postmaster.Logging.ServerLog(Postmaster.Logging.LogSinks.Json, dir, Postmaster.Logging.Severity.Log);
            log.WriteRecord(1234, System.Text.Encoding.UTF8.GetBytes(json));
            log.WriteRecord(1234, [0xFF, 0xFE, 0x00]); // not UTF-8 at all
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
