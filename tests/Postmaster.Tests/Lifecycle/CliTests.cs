using System.Text.Json;
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
        using var pm = new PmInstance("status");
        Assert.Equal(4, pm.Do("status").ExitCode); // no directory
        Assert.Equal(0, pm.Init().ExitCode);
        var stopped = pm.Do("status");
        Assert.Equal(3, stopped.ExitCode);
        Assert.Contains("no server running", stopped.Stdout);
        pm.StartOk();
        var running = pm.Do("status");
        Assert.Equal(0, running.ExitCode);
        Assert.Contains($"server is running (PID: {pm.Pid})", running.Stdout);
        var json = pm.StatusJson();
        Assert.Equal(pm.Pid, json.GetProperty("pid").GetInt32());
        Assert.Equal(pm.DataDir, json.GetProperty("dataDirectory").GetString());
        Assert.True(DateTime.TryParse(json.GetProperty("startedAt").GetString(), out _));
        Assert.True(json.GetProperty("sharedMemory").GetProperty("size").GetInt64() > 0);
        Assert.Equal(0, pm.Stop().ExitCode);
        Assert.Equal(3, pm.Do("status").ExitCode);
    }

    [Fact]
    public void Status_of_a_directory_that_is_not_a_data_directory_exits_4()
    {
        var dir = Directory.CreateTempSubdirectory("pmtest-notdata").FullName;
        try
        {
            Assert.Equal(4, PmInstance.Cli("status", "-D", dir).ExitCode);
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
        var r = PmInstance.Cli(args);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("postmaster --help", r.Stderr);
    }

    [Fact]
    public void Help_and_version_exit_0()
    {
        Assert.Equal(0, PmInstance.Cli("--help").ExitCode);
        var v = PmInstance.Cli("--version");
        Assert.Equal(0, v.ExitCode);
        Assert.Matches(@"\d+\.\d+", v.Stdout);
    }

    [Fact]
    public void Missing_data_directory_option_is_an_error()
    {
        var r = PmInstance.Run(Paths.PostmasterExe, new[] { "stop" }, new Dictionary<string, string> { ["PMDATA"] = "" });
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("no data directory specified", r.Stderr);
    }

    [Fact]
    public void PMDATA_supplies_the_data_directory()
    {
        using var pm = new PmInstance("pmdata");
        Assert.Equal(0, pm.Init().ExitCode);
        var r = PmInstance.Run(Paths.PostmasterExe, new[] { "status" }, new Dictionary<string, string> { ["PMDATA"] = pm.DataDir });
        Assert.Equal(3, r.ExitCode);
    }

    [Fact]
    public void Init_refuses_a_non_empty_directory()
    {
        using var pm = new PmInstance("initne");
        Directory.CreateDirectory(pm.DataDir);
        File.WriteAllText(Path.Combine(pm.DataDir, "precious"), "keep me");
        var r = pm.Init();
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"directory \"{pm.DataDir}\" exists but is not empty", r.Stderr);
        Assert.Equal("keep me", File.ReadAllText(Path.Combine(pm.DataDir, "precious")));
    }

    [Fact]
    public void Data_directory_with_wrong_permissions_is_refused()
    {
        using var pm = new PmInstance("perms");
        Assert.Equal(0, pm.Init().ExitCode);
        File.SetUnixFileMode(pm.DataDir, (UnixFileMode)0x1FF); // 0777
        var r = pm.Do("start");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"FATAL:  data directory \"{pm.DataDir}\" has invalid permissions", r.Stderr);
        Assert.Contains("Permissions should be u=rwx (0700) or u=rwx,g=rx (0750)", r.Stderr);
    }

    [Fact]
    public void Huge_pages_on_with_posix_shared_memory_is_refused()
    {
        using var pm = new PmInstance("hugeposix");
        var r = pm.Do("start", "-c", "shared_memory_type=posix", "-c", "huge_pages=on");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("huge pages not supported with the current \"shared_memory_type\" setting", r.Stderr);
    }

    [Theory]
    [InlineData("posix", "could not resize shared memory segment")]
    [InlineData("sysv", "could not create shared memory segment")]
    public void Shared_memory_larger_than_the_machine_fails_at_start_with_the_call_and_errno(string type, string message)
    {
        using var pm = new PmInstance("huge-" + type);
        var r = pm.Do("start", "-c", "shared_memory_type=" + type, "-c", "shared_memory_size=1TB");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.Matches("No space left on device|Cannot allocate memory|Invalid argument", r.Stderr);
        Assert.False(File.Exists(Path.Combine(pm.DataDir, "postmaster.pid")), "a failed start removes its lock file");
    }

    [Fact]
    public void Shmem_lists_the_allocations_of_the_running_segment()
    {
        using var pm = new PmInstance("shmem");
        pm.StartOk();
        var r = pm.Do("shmem", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var doc = JsonDocument.Parse(r.Stdout).RootElement;
        long total = doc.GetProperty("totalSize").GetInt64();
        Assert.Equal(pm.StatusJson().GetProperty("sharedMemory").GetProperty("size").GetInt64(), total);
        var rows = doc.GetProperty("allocations").EnumerateArray().ToList();
        Assert.Contains(rows, e => e.GetProperty("name").ValueKind == JsonValueKind.Null); // free space
        Assert.Contains(rows, e => e.GetProperty("name").GetString() == "<anonymous>");
        Assert.Equal(total, rows.Sum(e => e.GetProperty("allocatedSize").GetInt64()));
        var text = pm.Do("shmem");
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("allocated_size", text.Stdout);
        Assert.Equal(0, pm.Stop().ExitCode);
        Assert.Equal(3, pm.Do("shmem").ExitCode);
    }
}
