using System.Text.RegularExpressions;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Cli;

/// <summary>Issue 11 #6: simultaneous starts on one data directory. Exactly one wins; the losers' daemons tell their
/// own CLI (through a pipe) that the lock is taken, and never write into the winner's log; on a missing directory the
/// loser of the initialisation race starts normally instead of advising to remove or empty a live server's directory.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class ConcurrentStartTests
{
    private const int Starts = 10;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Ten_simultaneous_starts_one_wins_and_the_losers_leave_its_log_alone(bool missingDirectory)
    {
        using var pm = missingDirectory ? Clusters.Empty("race") : Clusters.Bare("race");
        using var go = new ManualResetEventSlim();
        var tasks = Enumerable.Range(0, Starts).Select(_ => Task.Run(() =>
        {
            go.Wait();
            return PostmasterCli.Run("start", "-D", pm.DataDirectory, "--detach");
        })).ToArray();
        go.Set();
        var results = tasks.Select(t => t.Result).ToList();
        pm.Status(); // records the winner for cleanup
        var winners = results.Where(r => r.ExitCode == 0).ToList();
        Assert.True(winners.Count == 1, "exactly one start wins:\n" + string.Join("\n---\n", results));
        int pid = pm.PostmasterPid;
        Assert.Contains($"server started (PID {pid})", winners[0].Stdout);
        foreach (var loser in results.Where(r => r.ExitCode != 0))
        {
            CliAssert.OneClearFailure(loser, 1);
            Assert.Contains("could not start server: lock file \"postmaster.pid\" already exists", loser.Stderr);
            Assert.Contains($"Is another postmaster (PID {pid}) running in data directory \"{pm.DataDirectory}\"?", loser.Stderr);
            Assert.DoesNotContain("not empty", loser.Output);
            Assert.DoesNotContain("remove", loser.Output);
        }
        Assert.Equal(1, results.Count(r => r.Stdout.Contains("initialized data directory")) + (missingDirectory ? 0 : 1));
        // The winner's log holds only its own, whole lines, its "ready" line among them.
        var log = pm.ServerLog();
        Assert.Contains($"[{pid}] LOG:  postmaster is ready (PID {pid}", log);
        foreach (var line in log.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Assert.Matches(new Regex($@"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC \[\d+\] [A-Z0-9]+:  "), line);
        Assert.DoesNotContain("already exists", log);
        pm.Stop();
    }

    [Fact]
    public void Simultaneous_foreground_starts_on_a_missing_directory_initialise_it_once()
    {
        // The daemon initialises a missing directory itself here (no CLI in front of it): atomically, so the losers
        // meet the winner's lock instead of a half-made or "not empty" directory.
        using var pm = Clusters.Empty("race-fg");
        var children = Enumerable.Range(0, 5)
            .Select(_ => ChildProcess.Start(Paths.PostmasterExe, new[] { "start", "-D", pm.DataDirectory })).ToList();
        try
        {
            Wait.Until(() => pm.IsRunning && pm.LockFile()?.TrimmedStatus == "ready", "one foreground server to be ready");
            int pid = pm.PostmasterPid;
            var losers = children.Where(c => c.Pid != pid).ToList();
            Assert.Equal(4, losers.Count);
            foreach (var c in losers)
            {
                Assert.Equal(1, c.WaitForExit());
                Assert.Contains("FATAL:  lock file \"postmaster.pid\" already exists", c.Output);
                Assert.DoesNotContain("not empty", c.Output);
            }
            Assert.Equal(1, children.Count(c => c.Output.Contains("initialized new data directory")));
            pm.Stop();
            Assert.Equal(0, children.Single(c => c.Pid == pid).WaitForExit());
        }
        finally
        {
            foreach (var c in children)
                c.Dispose();
        }
    }
}
