using Postmaster.Logging;
using Serilog.Events;
using Serilog.Parsing;
using Xunit;

namespace Postmaster.Tests.Units;

/// <summary>The JSON log files' rotation (log_rotation_size, log_rotation_age, a new day) and retention
/// (log_retained_files), with events whose timestamps the test chooses.</summary>
public sealed class AppendFileSinkTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pm-sink-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static LogEvent Event(DateTimeOffset at, string text) =>
        new(at, LogEventLevel.Information, null, new MessageTemplateParser().Parse(text), []);

    private string[] Files() => Directory.GetFiles(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    private static readonly DateTimeOffset Noon = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void A_file_is_not_grown_past_the_size_and_only_the_newest_files_are_kept()
    {
        using (var sink = new AppendFileSink(new JsonLogFormatter(), _dir, "postmaster-", new LogRotation(1000, TimeSpan.Zero, 3)))
        {
            for (int i = 0; i < 40; i++)
                sink.Emit(Event(Noon.AddSeconds(i), new string('x', 200)));
        }
        var files = Files();
        Assert.Equal(3, files.Length);
        Assert.All(files, f => Assert.True(new FileInfo(Path.Combine(_dir, f)).Length <= 1000, f));
        Assert.Contains(files, f => f.StartsWith("postmaster-20261203_", StringComparison.Ordinal));
        Assert.All(files, f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_dir, f))));
    }

    [Fact]
    public void A_file_is_closed_after_the_age_and_a_new_day_starts_a_new_file()
    {
        using (var sink = new AppendFileSink(new JsonLogFormatter(), _dir, "postmaster-", new LogRotation(0, TimeSpan.FromHours(1), 30)))
        {
            sink.Emit(Event(Noon, "a"));
            sink.Emit(Event(Noon.AddMinutes(59), "b"));   // same file
            sink.Emit(Event(Noon.AddMinutes(61), "c"));   // aged: the next file of the day
            sink.Emit(Event(Noon.AddHours(12), "d"));     // the next day
        }
        Assert.Equal(["postmaster-20261203.json", "postmaster-20261203_001.json", "postmaster-20261204.json"], Files());
        Assert.Equal(2, File.ReadAllLines(Path.Combine(_dir, "postmaster-20261203.json")).Length);
    }

    [Fact]
    public void New_rules_apply_to_the_open_file_and_a_reopen_starts_the_current_name_again()
    {
        using var sink = new AppendFileSink(new JsonLogFormatter(), _dir, "postmaster-", LogRotation.Default);
        sink.Emit(Event(Noon, new string('x', 300)));
        sink.Rotation = new LogRotation(200, TimeSpan.Zero, 30); // a reload: the open file is over the new size
        sink.Emit(Event(Noon.AddSeconds(1), "y"));
        Assert.Equal(["postmaster-20261203.json", "postmaster-20261203_001.json"], Files());
        File.Move(Path.Combine(_dir, "postmaster-20261203_001.json"), Path.Combine(_dir, "rotated.old")); // logrotate
        sink.Reopen();
        sink.Emit(Event(Noon.AddSeconds(2), "z"));
        Assert.Contains("postmaster-20261203_001.json", Files());
    }

    [Fact]
    public void A_batch_is_written_when_it_ends_and_still_rotates_by_size_within_it()
    {
        using var sink = new AppendFileSink(new JsonLogFormatter(), _dir, "postmaster-", new LogRotation(1000, TimeSpan.Zero, 30));
        IBatchingSink batching = sink;
        batching.BeginBatch();
        sink.Emit(Event(Noon, "held"));
        string first = Path.Combine(_dir, "postmaster-20261203.json");
        Assert.Equal(0, new FileInfo(first).Length); // opened, nothing written yet
        for (int i = 0; i < 20; i++)
            sink.Emit(Event(Noon.AddSeconds(i), new string('x', 200)));
        batching.EndBatch();
        var files = Files();
        Assert.True(files.Length >= 5, string.Join(", ", files));
        Assert.All(files, f => Assert.True(new FileInfo(Path.Combine(_dir, f)).Length <= 1000, f));
        var lines = files.SelectMany(f => File.ReadAllLines(Path.Combine(_dir, f))).ToList();
        Assert.Equal(21, lines.Count);
        Assert.Contains("\"message\":\"held\"", lines[0]);
        sink.Emit(Event(Noon.AddSeconds(30), "after")); // outside a batch: written at once
        Assert.Contains(Files().SelectMany(f => File.ReadAllLines(Path.Combine(_dir, f))), l => l.Contains("\"after\"", StringComparison.Ordinal));
    }
}
