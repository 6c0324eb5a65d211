using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Lifecycle;

/// <summary>The pg_ctl-like CLI: exit codes, usage errors, init, status, shmem.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class CliTests
{
    [Fact]
    public void Status_exits_4_then_3_then_0_like_pg_ctl()
    {
        using var pm = Clusters.Empty("status");
        Assert.Equal(4, pm.Run("status").ExitCode); // no directory
        Assert.Equal(0, pm.Run("init").ExitCode);
        var stopped = pm.Run("status");
        Assert.Equal(3, stopped.ExitCode);
        Assert.Contains("no server running", stopped.Stdout);
        pm.Start();
        var running = pm.Run("status");
        Assert.Equal(0, running.ExitCode);
        Assert.Contains($"server is running (PID: {pm.PostmasterPid})", running.Stdout);
        var status = pm.Status();
        Assert.True(status.Pid > 1);
        Assert.Equal(pm.DataDirectory, status.DataDirectory);
        Assert.NotNull(status.StartedAt);
        Assert.True(status.SharedMemory!.Size > 0);
        pm.Stop();
        Assert.Equal(3, pm.Run("status").ExitCode);
    }

    [Fact]
    public void Status_of_a_directory_that_is_not_a_data_directory_exits_4()
    {
        var dir = Directory.CreateTempSubdirectory("pmtest-notdata").FullName;
        try
        {
            Assert.Equal(4, PostmasterCli.Run("status", "-D", dir).ExitCode);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Theory]
    [InlineData("stop", "-m", "bogus")]
    [InlineData("frobnicate")]
    [InlineData("start", "--no-such-option")]
    [InlineData("stop", "-t", "notanint")]
    public void Usage_errors_exit_2(params string[] args)
    {
        var r = PostmasterCli.Run(args);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("postmaster --help", r.Stderr);
    }

    [Fact]
    public void Help_and_version_exit_0()
    {
        Assert.Equal(0, PostmasterCli.Run("--help").ExitCode);
        var v = PostmasterCli.Run("--version");
        Assert.Equal(0, v.ExitCode);
        Assert.Matches(@"\d+\.\d+", v.Stdout);
    }

    [Fact]
    public void Missing_data_directory_option_is_an_error()
    {
        var r = ProcessRunner.Run(Paths.PostmasterExe, new[] { "stop" }, new Dictionary<string, string> { ["PMDATA"] = "" });
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("no data directory specified", r.Stderr);
    }

    [Fact]
    public void PMDATA_supplies_the_data_directory()
    {
        using var pm = Clusters.Defaults("pmdata");
        var r = ProcessRunner.Run(Paths.PostmasterExe, new[] { "status" }, new Dictionary<string, string> { ["PMDATA"] = pm.DataDirectory });
        Assert.Equal(3, r.ExitCode);
    }

    [Fact]
    public void Init_refuses_a_non_empty_directory()
    {
        using var pm = Clusters.Empty("initne");
        Directory.CreateDirectory(pm.DataDirectory);
        File.WriteAllText(Path.Combine(pm.DataDirectory, "precious"), "keep me");
        var r = pm.Run("init");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"directory \"{pm.DataDirectory}\" exists but is not empty", r.Stderr);
        Assert.Equal("keep me", File.ReadAllText(Path.Combine(pm.DataDirectory, "precious")));
    }

    [Fact]
    public void Data_directory_with_wrong_permissions_is_refused()
    {
        using var pm = Clusters.Defaults("perms");
        File.SetUnixFileMode(pm.DataDirectory, (UnixFileMode)0x1FF); // 0777
        var r = pm.Run("start");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"FATAL:  data directory \"{pm.DataDirectory}\" has invalid permissions", r.Stderr);
        Assert.Contains("Permissions should be u=rwx (0700) or u=rwx,g=rx (0750)", r.Stderr);
    }

    [Fact]
    public void Huge_pages_on_with_posix_shared_memory_is_refused()
    {
        using var pm = Clusters.Empty("hugeposix");
        var r = pm.Run("start", "-c", "shared_memory_type=posix", "-c", "huge_pages=on");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("huge pages not supported with the current \"shared_memory_type\" setting", r.Stderr);
    }

    [Theory]
    [InlineData("posix", "could not resize shared memory segment")]
    [InlineData("sysv", "could not create shared memory segment")]
    public void Shared_memory_larger_than_the_machine_fails_at_start_with_the_call_and_errno(string type, string message)
    {
        using var pm = Clusters.Empty("huge-" + type);
        var r = pm.Run("start", "-c", "shared_memory_type=" + type, "-c", "shared_memory_size=1TB");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.Matches("No space left on device|Cannot allocate memory|Invalid argument", r.Stderr);
        Assert.False(File.Exists(Path.Combine(pm.DataDirectory, "postmaster.pid")), "a failed start removes its lock file");
    }

    [Fact]
    public void Shmem_lists_the_allocations_of_the_running_segment()
    {
        using var pm = Clusters.Empty("shmem");
        pm.Start();
        long total = pm.Shmem().TotalSize;
        Assert.Equal(pm.Status().SharedMemory!.Size, total);
        var rows = pm.Shmem().Allocations;
        Assert.Contains(rows, e => e.Name is null); // free space
        Assert.Contains(rows, e => e.Name == "<anonymous>");
        Assert.Contains(rows, e => e.Name == "Instance counters");
        Assert.Equal(total, rows.Sum(e => e.AllocatedSize));
        var text = pm.Run("shmem");
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("allocated_size", text.Stdout);
        pm.Stop();
        Assert.Equal(3, pm.Run("shmem").ExitCode);
    }
}
