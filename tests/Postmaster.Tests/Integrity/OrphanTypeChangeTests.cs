using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Os;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Integrity;

/// <summary>
/// A crash (SIGKILL of the postmaster; its backends leave by themselves), then a configuration with another
/// <c>shared_memory_type</c> and <c>dynamic_shared_memory_type</c>: what the dead instance left (its main segment of
/// the old type, its DSM control segment and a pinned segment of the old DSM type) is found and removed by the next
/// start, or by <c>postmaster cleanup</c> when the stale lock file is gone too.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class OrphanTypeChangeTests
{
    public static TheoryData<string, string, string, string> Changes => new()
    {
        { "sysv", "sysv", "posix", "mmap" },
        { "posix", "posix", "sysv", "sysv" },
        { "sysv", "mmap", "posix", "posix" },
    };

    [Theory]
    [MemberData(nameof(Changes))]
    public void Start_after_a_crash_removes_the_dead_instances_segments_of_the_previous_types(string shm, string dsm, string newShm, string newDsm)
    {
        using var pm = Clusters.Bare($"typechange-{shm}-{dsm}", CrashConfig(shm, dsm));
        var (key, id, left) = Crash(pm, shm, dsm);
        File.AppendAllLines(pm.ConfigPath, [$"shared_memory_type = {newShm}", $"dynamic_shared_memory_type = {newDsm}"]);

        pm.Start();
        Assert.Equal(newShm, pm.LockFile()!.ShmType);
        Assert.Contains($"removing shared memory block (key {key}, ID {id}) left behind by a previous postmaster", pm.ServerLog());
        Assert.False(TestIpc.SegmentExists(shm, key, id), $"the dead instance's {shm} segment survived the start");
        Assert.Empty(Tagged(pm, dsm).Intersect(left)); // the new instance's own objects aside
        pm.Stop();
        Assert.Empty(Tagged(pm, dsm));
    }

    [Theory]
    [InlineData("sysv", "posix")]
    [InlineData("posix", "sysv")]
    public void Cleanup_without_the_lock_file_finds_a_main_segment_of_the_other_type(string shm, string newShm)
    {
        using var pm = Clusters.Bare($"typecleanup-{shm}", CrashConfig(shm, "sysv"));
        var (key, id, _) = Crash(pm, shm, "sysv");
        File.Delete(Path.Combine(pm.DataDirectory, "postmaster.pid")); // nothing records what the dead instance used
        File.AppendAllLines(pm.ConfigPath, [$"shared_memory_type = {newShm}", "dynamic_shared_memory_type = posix"]);

        var r = pm.Run("cleanup");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.DoesNotContain("nothing to clean up", r.Stdout);
        Assert.Contains($"removing shared memory block (key {key}, ID {id})", r.Stderr);
        Assert.False(TestIpc.SegmentExists(shm, key, id), $"the dead instance's {shm} segment survived cleanup");
        Assert.Empty(Tagged(pm, "sysv"));
        Assert.Equal("nothing to clean up", pm.Run("cleanup").Stdout.Trim());
    }

    /// <summary>The configuration <see cref="Crash"/> runs: a worker holding a pinned DSM segment.</summary>
    private static string[] CrashConfig(string shm, string dsm) =>
        [$"shared_memory_type = {shm}", $"dynamic_shared_memory_type = {dsm}", "worker.h.entry = 'dsm-hold'", "worker.h.argument = '1:64kB:pin'"];

    /// <summary>Starts the instance (configured by <see cref="CrashConfig"/>), SIGKILLs the postmaster and waits for
    /// its backends to go; returns the main segment's key and id, and the DSM objects left.</summary>
    private static (long Key, long Id, IReadOnlyList<DsmOsObject> Left) Crash(PostmasterCluster pm, string shm, string dsm)
    {
        pm.Start();
        var backends = pm.WaitForBackends(b => b.Count == 1 && b[0].DsmSegments == 1, "the worker holding a segment");
        pm.WaitForLog("created dynamic shared memory segment");
        var c = pm.LockFile()!;
        pm.KillPostmaster();
        pm.WaitUntilStopped();
        Wait.Until(() => backends.All(b => !ProcessControl.IsAlive(b.Pid!.Value)), "its backends to leave by themselves");
        Assert.True(TestIpc.SegmentExists(shm, c.ShmKey!.Value, c.ShmId!.Value), "SIGKILL leaves the main segment behind");
        var left = Tagged(pm, dsm);
        Assert.Equal(2, left.Count); // the control segment and the pinned segment
        return (c.ShmKey!.Value, c.ShmId!.Value, left);
    }

    private static IReadOnlyList<DsmOsObject> Tagged(PostmasterCluster pm, string dsm) =>
        DsmOrphanCleanup.FindTagged(DsmConfig.For(dsm switch { "sysv" => DsmType.SysV, "mmap" => DsmType.Mmap, _ => DsmType.Posix },
            pm.DataDirectory, FileStat.TryStat(pm.DataDirectory)!.Value));
}
