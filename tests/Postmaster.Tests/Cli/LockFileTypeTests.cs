using System.Diagnostics;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Cli;

/// <summary>Issue 11 #8: a FIFO, a symbolic link or a huge file as postmaster.pid never hangs a command: the file is
/// opened O_NONBLOCK|O_NOFOLLOW, refused unless regular, and read up to a bound.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class LockFileTypeTests
{
    [Theory]
    [InlineData("status", 4)]
    [InlineData("stop", 1)]
    [InlineData("reload", 1)]
    [InlineData("shmem", 1)]
    [InlineData("restart", 1)]
    [InlineData("start", 1)]
    public void A_fifo_as_lock_file_is_refused_at_once(string command, int exitCode)
    {
        using var pm = Clusters.Bare("fifo");
        string path = Path.Combine(pm.DataDirectory, "postmaster.pid");
        var mk = ProcessRunner.Run("/usr/bin/mkfifo", new[] { path });
        Assert.True(mk.ExitCode == 0, mk.ToString());
        try
        {
            var r = command == "start" ? pm.Run("start", "--detach") : pm.Run(command); // a hang would time out here
            CliAssert.OneClearFailure(r, exitCode);
            Assert.Contains($"lock file \"{path}\" is not a regular file (it is a FIFO)", r.Stderr);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.False(pm.IsRunning);
    }

    [Fact]
    public void A_symbolic_link_as_lock_file_is_refused()
    {
        using var pm = Clusters.Bare("symlink");
        string path = Path.Combine(pm.DataDirectory, "postmaster.pid");
        File.CreateSymbolicLink(path, pm.ConfigPath);
        try
        {
            Refused(pm, path);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.True(File.Exists(pm.ConfigPath), "the link's target is left alone");
    }

    private static void Refused(PostmasterCluster pm, string path)
    {
        foreach (var (command, code) in new[] { ("status", 4), ("stop", 1), ("reload", 1) })
        {
            var r = pm.Run(command);
            CliAssert.OneClearFailure(r, code);
            Assert.Contains($"lock file \"{path}\" is a symbolic link", r.Stderr);
        }
        var start = pm.Run("start", "--detach");
        CliAssert.OneClearFailure(start, 1);
        Assert.Contains("is a symbolic link", start.Stderr);
    }

    [Fact]
    public void A_huge_lock_file_is_read_up_to_a_bound()
    {
        using var pm = Clusters.Bare("hugepid");
        string path = Path.Combine(pm.DataDirectory, "postmaster.pid");
        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            fs.Write("12345678901234567890"u8);
            fs.SetLength(4L << 30); // sparse: 4 GB, no lock
        }
        var sw = Stopwatch.StartNew();
        var status = pm.Run("status");
        Assert.True(status.ExitCode == 3, status.ToString());
        var stop = pm.Run("stop");
        CliAssert.OneClearFailure(stop, 1);
        Assert.Contains("no server running", stop.Stderr);
        Assert.True(sw.Elapsed < ClusterOptions.DefaultTimeout, "status and stop read a bounded prefix");
        pm.Start(); // not locked: replaced as a corrupt lock file
        pm.Stop();
    }
}
