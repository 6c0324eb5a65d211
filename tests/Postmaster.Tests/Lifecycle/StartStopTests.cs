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
        using var pm = new PmInstance($"{type}-{mode}");
        pm.StartOk("-c", $"shared_memory_type={type}");
        var status = pm.StatusJson();
        Assert.Equal("ready", status.GetProperty("state").GetString());
        Assert.Equal(type, status.GetProperty("sharedMemory").GetProperty("type").GetString());
        long key = status.GetProperty("sharedMemory").GetProperty("key").GetInt64();
        long id = status.GetProperty("sharedMemory").GetProperty("id").GetInt64();
        Assert.True(Leaks.SegmentExists(type, key, id), "the segment named by status exists while running");

        var stop = pm.Stop(mode);
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.Contains("server stopped", stop.Stdout);
        Assert.False(File.Exists(Path.Combine(pm.DataDir, "postmaster.pid")), "lock file removed");
        Assert.False(Leaks.SegmentExists(type, key, id), "segment removed at shutdown");
        var log = pm.Log;
        Assert.Contains($"received {mode} shutdown request", log);
        Assert.EndsWith("LOG:  postmaster is shut down\n", log);
    }

    [Fact]
    public void Second_start_is_refused_while_the_first_runs()
    {
        using var pm = new PmInstance("second");
        pm.StartOk();
        int pid = pm.Pid;
        var second = pm.Do("start"); // foreground: fails at once with the lock-file FATAL
        Assert.Equal(1, second.ExitCode);
        Assert.Contains("FATAL:  lock file \"postmaster.pid\" already exists", second.Stderr);
        Assert.Contains($"HINT:  Is another postmaster (PID {pid}) running in data directory \"{pm.DataDir}\"?", second.Stderr);
        Assert.Equal(pid, pm.Pid);
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    [Fact]
    public void Stop_when_stopped_fails_with_no_server_running()
    {
        using var pm = new PmInstance("stopstopped");
        Assert.Equal(0, pm.Init().ExitCode);
        var r = pm.Stop();
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("no server running", r.Stderr);
        pm.StartOk();
        Assert.Equal(0, pm.Stop().ExitCode);
        var again = pm.Stop();
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("no server running", again.Stderr);
    }

    [Fact]
    public void Restart_keeps_the_recorded_options()
    {
        using var pm = new PmInstance("restart");
        pm.StartOk("-c", "shared_memory_type=posix");
        int first = pm.Pid;
        var r = pm.Do("restart");
        pm.Track();
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.NotEqual(first, pm.Pid);
        Assert.Equal("posix", pm.StatusJson().GetProperty("sharedMemory").GetProperty("type").GetString());
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    [Fact]
    public void Start_creates_a_missing_data_directory_with_owner_only_modes()
    {
        using var pm = new PmInstance("fresh");
        pm.StartOk();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(pm.DataDir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(pm.ConfigPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(pm.DataDir, "postmaster.pid")));
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    [Fact]
    public void Lock_file_has_the_postgres_line_layout()
    {
        using var pm = new PmInstance("pidfile");
        pm.StartOk();
        var lines = File.ReadAllText(Path.Combine(pm.DataDir, "postmaster.pid")).Split('\n');
        Assert.Equal(pm.Pid.ToString(), lines[0]);
        Assert.Equal(pm.DataDir, lines[1]);
        Assert.InRange(long.Parse(lines[2]), DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 600, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        var keyId = lines[6].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, keyId.Length);
        Assert.Equal(TestIpc.FirstKeyFor(pm.DataDir), long.Parse(keyId[0]));
        Assert.Equal("ready   ", lines[7]);
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    [Fact]
    public void Fast_stop_works_when_started_as_a_shell_background_job()
    {
        // A non-interactive shell starts background jobs with SIGINT and SIGQUIT ignored; the daemon must still
        // honour them (PostgreSQL installs its handlers regardless of the inherited disposition).
        using var pm = new PmInstance("bgjob");
        Assert.Equal(0, pm.Init().ExitCode);
        var sh = PmInstance.Run("/bin/sh", new[] { "-c", $"'{Paths.PostmasterExe}' start -D '{pm.DataDir}' >/dev/null 2>&1 &" });
        Assert.Equal(0, sh.ExitCode);
        Wait.Until(() => pm.LockFile?.TrimmedStatus == "ready", "the background postmaster to become ready");
        pm.Track();
        var stop = pm.Stop("fast");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        var immediate = pm.Do("start", "--detach");
        pm.Track();
        Assert.Equal(0, immediate.ExitCode);
        Assert.Equal(0, pm.Stop("immediate").ExitCode);
    }
}
