using System.Text.Json;
using Postmaster.Shmem.Os;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Cli;

/// <summary>Issue 11 #3: the CLI signals only a process it has proven to hold the lock file (its fd and fdinfo show the
/// OFD lock); a damaged line 1 is reported, never signalled.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class LockHolderTests
{
    [Theory]
    [InlineData("1")]
    [InlineData("-1")]
    [InlineData("0")]
    [InlineData("garbage")]
    [InlineData("")]
    [InlineData("STRANGER")]
    public void A_damaged_pid_line_is_reported_and_nothing_is_signalled(string value)
    {
        using var pm = Clusters.Bare("damaged");
        pm.Start();
        int pid = pm.PostmasterPid;
        string path = Path.Combine(pm.DataDirectory, "postmaster.pid");
        using var stranger = ChildProcess.Start("/bin/sleep", new[] { "600" });
        string line = value == "STRANGER" ? stranger.Pid.ToString() : value;
        var original = File.ReadAllBytes(path);
        string text = File.ReadAllText(path);
        OverwriteInPlace(path, System.Text.Encoding.UTF8.GetBytes(line + text[text.IndexOf('\n')..]));
        try
        {
            foreach (var args in new[]
                     {
                         new[] { "stop" }, new[] { "stop", "-m", "immediate" }, new[] { "reload" }, new[] { "restart" },
                         new[] { "terminate", "nobody" }, new[] { "spawn", "--worker", "idle", "--name", "x" }, new[] { "shmem" },
                     })
            {
                var r = pm.Run(args[0], args[1..]);
                CliAssert.OneClearFailure(r, 1);
                Assert.Contains($"a server holds the lock on \"{path}\", but the lock file is damaged", r.Stderr);
                Assert.Contains("no signal was sent", r.Stderr);
                Assert.Contains($"the lock is held by PID {pid}.", r.Stderr);
                Assert.True(ProcessControl.IsAlive(pid), $"{args[0]} must not stop the server\n{r}");
                Assert.True(pm.IsRunning, $"{args[0]} must leave the server holding its lock\n{r}");
                Assert.False(stranger.Process.HasExited, $"{args[0]} signalled the stranger PID {stranger.Pid}\n{r}");
            }
            var status = pm.Run("status", "--json");
            Assert.True(status.ExitCode == 0, status.ToString()); // a server runs: the lock is held
            var json = JsonDocument.Parse(status.Stdout).RootElement;
            Assert.True(json.GetProperty("running").GetBoolean());
            Assert.Equal(JsonValueKind.Null, json.GetProperty("pid").ValueKind);
            Assert.Contains("lock file is damaged", status.Stderr);
            var second = pm.Run("start", "--detach");
            CliAssert.OneClearFailure(second, 1);
            Assert.Contains("lock file \"postmaster.pid\" already exists", second.Stderr);
            Assert.Contains($"it is held by PID {pid}.", second.Stderr);
        }
        finally
        {
            OverwriteInPlace(path, original);
        }
        pm.Stop();
    }

    [Fact]
    public void A_lock_holder_that_is_proven_is_signalled()
    {
        using var pm = Clusters.Bare("proven");
        pm.Start();
        var reload = pm.Run("reload");
        Assert.True(reload.ExitCode == 0, reload.ToString());
        pm.WaitForLog("received SIGHUP");
        pm.Stop();
    }

    /// <summary>Rewrites the file without replacing it: the daemon's lock stays on this inode.</summary>
    private static void OverwriteInPlace(string path, byte[] content)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        fs.SetLength(0);
        fs.Write(content);
    }
}
