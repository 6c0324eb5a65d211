using System.Diagnostics;
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
        using var pm = new PmInstance("fifo");
        pm.InitBare();
        string path = Path.Combine(pm.DataDir, "postmaster.pid");
        var mk = PmInstance.Run("/usr/bin/mkfifo", new[] { path });
        Assert.True(mk.ExitCode == 0, mk.ToString());
        try
        {
            var r = command == "start" ? pm.Do("start", "--detach") : pm.Do(command); // a hang would time out here
            CliAssert.OneClearFailure(r, exitCode);
            Assert.Contains($"lock file \"{path}\" is not a regular file (it is a FIFO)", r.Stderr);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.False(pm.Running);
    }

    [Fact]
    public void A_symbolic_link_as_lock_file_is_refused()
    {
        using var pm = new PmInstance("symlink");
        pm.InitBare();
        string path = Path.Combine(pm.DataDir, "postmaster.pid");
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

    private static void Refused(PmInstance pm, string path)
    {
        foreach (var (command, code) in new[] { ("status", 4), ("stop", 1), ("reload", 1) })
        {
            var r = pm.Do(command);
            CliAssert.OneClearFailure(r, code);
            Assert.Contains($"lock file \"{path}\" is a symbolic link", r.Stderr);
        }
        var start = pm.Do("start", "--detach");
        CliAssert.OneClearFailure(start, 1);
        Assert.Contains("is a symbolic link", start.Stderr);
    }

    [Fact]
    public void A_huge_lock_file_is_read_up_to_a_bound()
    {
        using var pm = new PmInstance("hugepid");
        pm.InitBare();
        string path = Path.Combine(pm.DataDir, "postmaster.pid");
        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            fs.Write("12345678901234567890"u8);
            fs.SetLength(4L << 30); // sparse: 4 GB, no lock
        }
        var sw = Stopwatch.StartNew();
        var status = pm.Do("status");
        Assert.True(status.ExitCode == 3, status.ToString());
        var stop = pm.Do("stop");
        CliAssert.OneClearFailure(stop, 1);
        Assert.Contains("no server running", stop.Stderr);
        Assert.True(sw.Elapsed < Timeouts.Default, "status and stop read a bounded prefix");
        pm.StartOk(); // not locked: replaced as a corrupt lock file
        Assert.Equal(0, pm.Stop().ExitCode);
    }
}
