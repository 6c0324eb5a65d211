using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Cli;

/// <summary>Issue 11 #7, #9 and #11: a failed detached start prints exactly what its own daemon said (not an earlier
/// start's lines, also with JSON logging, never an empty DETAIL); a start that times out says so and leaves the server
/// starting; postmaster.opts and the log file are 0600 whatever the umask.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class StartOutputTests
{
    [Theory]
    [InlineData("stderr")]
    [InlineData("json")]
    public void A_failed_start_prints_its_own_fatal_lines_only(string destination)
    {
        using var pm = Clusters.Bare("ownfatal-" + destination, $"log_destination = {destination}");
        var first = pm.TryStart("-c", "shared_memory_type=posix", "-c", "shared_memory_size=1TB");
        CliAssert.OneClearFailure(first, 1);
        var second = pm.TryStart("-c", "shared_memory_type=posix", "-c", "shared_memory_size=1TB");
        CliAssert.OneClearFailure(second, 1);
        foreach (var r in new[] { first, second })
        {
            Assert.StartsWith("postmaster: could not start server: could not resize shared memory segment", r.Stderr);
            Assert.Equal(1, Count(r.Stderr, "could not resize shared memory segment"));
            Assert.DoesNotContain("[", r.Stderr); // no log-line prefixes ("... UTC [PID] FATAL:") of any process
        }
        Assert.False(pm.IsRunning);
    }

    [Fact]
    public void A_failed_start_before_the_lock_writes_nothing_into_the_data_directory()
    {
        using var pm = Clusters.Bare("prelock");
        var r = pm.TryStart("-c", "max_backends=lots");
        CliAssert.OneClearFailure(r, 1);
        Assert.Contains("could not start server: configuration file", r.Stderr);
        Assert.Contains("LOG:  invalid value for parameter \"max_backends\": \"lots\"", r.Stderr);
        Assert.False(Directory.Exists(Path.Combine(pm.DataDirectory, "log")), "no log directory before the lock is held");
        Assert.False(File.Exists(Path.Combine(pm.DataDirectory, "postmaster.opts")));
    }

    [Fact]
    public void Start_that_times_out_says_so_and_the_server_keeps_starting()
    {
        using var pm = Clusters.Bare("timeout");
        var r = pm.TryStart("-t", "0");
        CliAssert.OneClearFailure(r, 1);
        Assert.Contains("postmaster: server did not start in time (waited 0 s)", r.Stderr);
        Assert.Contains("was not stopped: it is still starting", r.Stderr);
        pm.WaitUntilReady();
        pm.Stop();
    }

    [Fact]
    public void No_wait_returns_once_the_daemon_holds_the_lock_and_reports_an_earlier_failure()
    {
        using var pm = Clusters.Bare("nowait");
        var bad = pm.TryStart("-W", "-c", "max_backends=lots");
        CliAssert.OneClearFailure(bad, 1);
        Assert.Contains("invalid value for parameter \"max_backends\"", bad.Stderr);
        var ok = pm.TryStart("-W");
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.Contains("server starting (PID", ok.Stdout);
        Assert.True(pm.IsRunning, "the lock is held when start -W returns");
        pm.WaitUntilReady();
        pm.Stop();
    }

    [Fact]
    public void Options_file_and_log_file_are_0600_under_umask_000()
    {
        using var pm = Clusters.Bare("umask");
        string opts = Path.Combine(pm.DataDirectory, "postmaster.opts");
        File.WriteAllText(opts, "old\n");
        File.SetUnixFileMode(opts, (UnixFileMode)0x1B6); // 0666, as an older version left it
        var r = ProcessRunner.Run("/bin/sh", new[] { "-c", $"umask 000; exec '{Paths.PostmasterExe}' start -D '{pm.DataDirectory}' --detach" });
        Assert.True(r.ExitCode == 0, r.ToString());
        const UnixFileMode OwnerRw = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        Assert.Equal(OwnerRw, File.GetUnixFileMode(opts));
        Assert.Equal(OwnerRw, File.GetUnixFileMode(pm.LogPath));
        Assert.Contains("\"start\" \"-D\"", File.ReadAllText(opts));
        pm.Stop();
    }

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal))
            n++;
        return n;
    }
}
