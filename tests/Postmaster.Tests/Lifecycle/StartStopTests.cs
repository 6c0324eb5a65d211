using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Lifecycle;

/// <summary>pg_ctl's 001_start_stop.pl, plus each shutdown mode with each main-segment type.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class StartStopTests
{
    [Theory]
    [InlineData("sysv", "smart")]
    [InlineData("sysv", "fast")]
    [InlineData("sysv", "immediate")]
    [InlineData("posix", "smart")]
    [InlineData("posix", "fast")]
    [InlineData("posix", "immediate")]
    public void Start_status_stop_in_every_mode_leaves_nothing(string type, string mode)
    {
        using var pm = Clusters.Empty($"{type}-{mode}");
        pm.Start("-c", $"shared_memory_type={type}");
        var status = pm.Status();
        Assert.Equal(ServerState.Ready, status.State);
        Assert.Equal(type, status.SharedMemory!.Type);
        long key = status.SharedMemory.Key!.Value;
        long id = status.SharedMemory.Id!.Value;
        Assert.True(TestIpc.SegmentExists(type, key, id), "the segment named by status exists while running");

        var stop = pm.Stop(Enum.Parse<ShutdownMode>(mode, ignoreCase: true));
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.Contains("server stopped", stop.Stdout);
        Assert.False(File.Exists(Path.Combine(pm.DataDirectory, "postmaster.pid")), "lock file removed");
        Assert.False(TestIpc.SegmentExists(type, key, id), "segment removed at shutdown");
        var log = pm.ServerLog();
        Assert.Contains($"received {mode} shutdown request", log);
        Assert.EndsWith("LOG:  postmaster is shut down\n", log);
    }

    [Fact]
    public void Second_start_is_refused_while_the_first_runs()
    {
        using var pm = Clusters.Empty("second");
        pm.Start();
        int pid = pm.PostmasterPid;
        var second = pm.Run("start"); // foreground: fails at once with the lock-file FATAL
        Assert.Equal(1, second.ExitCode);
        Assert.Contains("FATAL:  lock file \"postmaster.pid\" already exists", second.Stderr);
        Assert.Contains($"HINT:  Is another postmaster (PID {pid}) running in data directory \"{pm.DataDirectory}\"?", second.Stderr);
        Assert.Equal(pid, pm.PostmasterPid);
        pm.Stop();
    }

    [Fact]
    public void Stop_when_stopped_fails_with_no_server_running()
    {
        using var pm = Clusters.Defaults("stopstopped");
        var r = pm.TryStop();
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("no server running", r.Stderr);
        pm.Start();
        pm.Stop();
        var again = pm.TryStop();
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("no server running", again.Stderr);
    }

    [Fact]
    public void Restart_keeps_the_recorded_options()
    {
        using var pm = Clusters.Empty("restart");
        pm.Start("-c", "shared_memory_type=posix");
        int first = pm.PostmasterPid;
        pm.Restart();
        Assert.NotEqual(first, pm.PostmasterPid);
        Assert.Equal("posix", pm.Status().SharedMemory!.Type);
        pm.Stop();
    }

    [Fact]
    public void Start_creates_a_missing_data_directory_with_owner_only_modes()
    {
        using var pm = Clusters.Empty("fresh");
        pm.Start();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(pm.DataDirectory));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(pm.ConfigPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(pm.DataDirectory, "postmaster.pid")));
        pm.Stop();
    }

    [Fact]
    public void Lock_file_has_the_postgres_line_layout()
    {
        using var pm = Clusters.Empty("pidfile");
        pm.Start();
        var lines = File.ReadAllText(Path.Combine(pm.DataDirectory, "postmaster.pid")).Split('\n');
        Assert.Equal(pm.PostmasterPid.ToString(), lines[0]);
        Assert.Equal(pm.DataDirectory, lines[1]);
        Assert.InRange(long.Parse(lines[2]), DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 600, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        var keyId = lines[6].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, keyId.Length);
        Assert.Equal(TestIpc.FirstKeyFor(pm.DataDirectory), long.Parse(keyId[0]));
        Assert.Equal("ready   ", lines[7]);
        pm.Stop();
    }

    [Fact]
    public void Fast_stop_works_when_started_as_a_shell_background_job()
    {
        // A non-interactive shell starts background jobs with SIGINT and SIGQUIT ignored; the daemon must still
        // honour them (PostgreSQL installs its handlers regardless of the inherited disposition).
        using var pm = Clusters.Defaults("bgjob");
        var sh = ProcessRunner.Run("/bin/sh", new[] { "-c", $"'{Paths.PostmasterExe}' start -D '{pm.DataDirectory}' >/dev/null 2>&1 &" });
        Assert.Equal(0, sh.ExitCode);
        pm.WaitUntilReady();
        pm.Stop(ShutdownMode.Fast);
        pm.Start();
        pm.Stop(ShutdownMode.Immediate);
    }
}
