using Postmaster.Logging;
using Postmaster.Shmem.Text;
using Xunit;

namespace Postmaster.Tests.Units;

/// <summary>The collector's sync barrier: what is in the pipe when <see cref="LogCollector.Sync"/> is called is in the
/// log when it returns (the supervisor relies on it to write a backend's last words before the line about its death),
/// whatever the collector's coalescing pause; and a stopped collector never keeps a caller waiting.</summary>
public sealed class LogCollectorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pm-collector-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string JsonText() => string.Concat(Directory.GetFiles(_dir, "*.json").Select(File.ReadAllText));

    [Fact]
    public void What_is_in_the_pipe_is_in_the_log_when_sync_returns()
    {
        using var log = new ServerLog(LogSinks.Json, _dir, Severity.Log);
        var collector = new LogCollector(log);
        try
        {
            for (int round = 0; round < 50; round++)
            {
                for (int i = 0; i < 20; i++)
                    Assert.True(LogPipe.WriteRecord(collector.WriteFd, 4242, System.Text.Encoding.UTF8.GetBytes($"{{\"message\":\"line {round}.{i}\"}}")));
                collector.Sync(TimeSpan.FromSeconds(30));
                Assert.Contains($"\"message\":\"line {round}.19\"", JsonText()); // no waiting: it is there already
            }
        }
        finally
        {
            collector.Dispose();
        }
        collector.Sync(TimeSpan.FromSeconds(30)); // stopped: returns at once
        Assert.Equal(1000, JsonText().Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.Contains("\"line ", StringComparison.Ordinal)));
    }
}
