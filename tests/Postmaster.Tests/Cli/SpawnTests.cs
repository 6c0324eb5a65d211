using Postmaster.Cli;
using Postmaster.Shmem.Backends;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Cli;

/// <summary>Issue 11 #14: spawn validates its entry where it enters, derives a default name that fits, and returns
/// only once the worker runs (or says it did not).</summary>
[Collection(IntegrationCollection.Name)]
public sealed class SpawnTests
{
    private static string TestChildDll => Path.Combine(Paths.OutDir, "testchild", "TestChild.dll");

    [Theory]
    [InlineData("no-such-builtin", 2, "invalid worker entry \"no-such-builtin\"")]
    [InlineData("/nonexistent/Worker.dll:X.Y", 1, "could not access worker library \"/nonexistent/Worker.dll\": No such file or directory")]
    [InlineData("/tmp:X.Y", 2, "is not a .dll file")]
    [InlineData("lib/Missing.dll:X.Y", 1, "could not access worker library \"DATADIR/lib/Missing.dll\"")]
    [InlineData("DIR.dll:X.Y", 1, "Is a directory")]
    public void A_bad_entry_is_refused_before_anything_starts(string entry, int exitCode, string message)
    {
        using var pm = Clusters.Bare("badentry", "backend_pool_size = 0");
        pm.Start();
        var dirDll = Path.Combine(pm.DataDirectory, "dir.dll");
        Directory.CreateDirectory(dirDll);
        entry = entry.Replace("DIR.dll", dirDll);
        var r = pm.Run("spawn", "--worker", entry, "--name", "bad");
        CliAssert.OneClearFailure(r, exitCode);
        Assert.Contains(message.Replace("DATADIR", pm.DataDirectory), r.Stderr);
        Assert.DoesNotContain("started worker", r.Output);
        Assert.Empty(pm.Status().Backends);
        Assert.DoesNotContain("\"bad\"", pm.ServerLog());
        pm.Stop();
    }

    [Fact]
    public void A_library_worker_without_a_name_is_named_after_its_type()
    {
        using var pm = Clusters.Bare("defaultname", "backend_pool_size = 0");
        pm.Start();
        string marker = Path.Combine(pm.DataDirectory, "marker");
        var r = pm.Run("spawn", "--worker", $"{TestChildDll}:Postmaster.TestChild.Workers.MarkerWorker", "--argument", marker);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("started worker \"MarkerWorker\"", r.Stdout);
        Assert.Contains(pm.Status().Backends, b => b.Name == "MarkerWorker" && b.State == BackendState.Running);
        pm.Stop();
    }

    [Fact]
    public void Default_names_are_the_type_name_cut_to_the_slot_limit()
    {
        Assert.Equal("idle", WorkerEntry.DefaultName("idle"));
        Assert.Equal("Counter", WorkerEntry.DefaultName("/x/My.Workers.dll:My.Workers.Counter"));
        Assert.Equal("Inner", WorkerEntry.DefaultName("/x/A.dll:Ns.Outer+Inner"));
        var longName = new string('N', 100);
        Assert.Equal(BackendSlotArray.MaxNameBytes, WorkerEntry.DefaultName($"/x/A.dll:Ns.{longName}").Length);
    }

    [Fact]
    public void The_builtin_list_matches_the_backend()
    {
        var source = File.ReadAllText(Path.Combine(Paths.RepoRoot, "src", "Backend", "WorkerResolver.cs"));
        var names = System.Text.RegularExpressions.Regex.Matches(source, "\\[\"([a-z-]+)\"\\] = \\(\\) =>").Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(names);
        Assert.Equal(names.OrderBy(n => n), WorkerEntry.Builtins.OrderBy(n => n));
    }

    [Fact]
    public void Spawn_returns_once_the_worker_runs()
    {
        using var pm = Clusters.Bare("spawnwait", "backend_pool_size = 0");
        pm.Start();
        using var shmem = pm.AttachShmem();
        for (int i = 0; i < 3; i++)
        {
            var r = pm.Run("spawn", "--worker", "idle", "--name", $"w{i}", "--json");
            Assert.True(r.ExitCode == 0, r.ToString());
            var answer = System.Text.Json.JsonDocument.Parse(r.Stdout).RootElement;
            var slot = shmem.Slots.Read(answer.GetProperty("slot").GetInt32());
            // No waiting here: the command itself waited until the backend attached and marked its slot.
            Assert.Equal(BackendSlotState.Active, slot.State);
            Assert.Equal(answer.GetProperty("pid").GetInt32(), slot.Pid);
        }
        pm.Stop();
    }
}
