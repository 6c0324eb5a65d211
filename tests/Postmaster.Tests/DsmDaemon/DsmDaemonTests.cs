using System.Text.RegularExpressions;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Os;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.DsmDaemon;

/// <summary>Dynamic shared memory owned by a running postmaster: orphan cleanup after a crash, reconcile of a dead
/// backend's references, shutdown and full restart destroying everything (pinned segments included).</summary>
[Collection(IntegrationCollection.Name)]
public sealed class DsmDaemonTests
{
    private static PostmasterCluster Instance(string label, string dsmType, params string[] config) =>
        Clusters.Bare(label, config.Prepend($"dynamic_shared_memory_type = {dsmType}").ToArray());

    private static DsmConfig ConfigOf(PostmasterCluster pm, string type) => DsmConfig.For(type switch
    {
        "sysv" => DsmType.SysV,
        "mmap" => DsmType.Mmap,
        _ => DsmType.Posix,
    }, pm.DataDirectory, FileStat.TryStat(pm.DataDirectory)!.Value);

    private static List<uint> CreatedHandles(PostmasterCluster pm) =>
        Regex.Matches(pm.ServerLog(), @"created dynamic shared memory segment (\d+)").Select(m => uint.Parse(m.Groups[1].Value)).ToList();

    private static IReadOnlyList<DsmSegmentRow> Segments(PostmasterCluster pm) => pm.Shmem().DsmSegments;

    [Theory]
    [InlineData("posix")]
    [InlineData("sysv")]
    [InlineData("mmap")]
    public void Start_over_a_killed_instance_removes_every_orphaned_segment(string type)
    {
        using var pm = Instance("orphans-" + type, type, "worker.h.entry = 'dsm-hold'", "worker.h.argument = '3:64kB'",
            "worker.p.entry = 'dsm-hold'", "worker.p.argument = '2:16kB:pin'");
        pm.Start();
        Wait.Until(() => Regex.Matches(pm.ServerLog(), "created dynamic shared memory segment").Count == 5, "five segments");
        var config = ConfigOf(pm, type);
        Assert.Equal(6, DsmOrphanCleanup.FindTagged(config).Count); // five segments and the control segment
        // Everyone dies without an exit path: stop the backends, kill the postmaster, then kill the backends.
        var pids = pm.Status().Backends.Select(b => b.Pid!.Value).ToList();
        pids.ForEach(p => pm.Signal(p, UnixSignal.SIGSTOP));
        pm.KillPostmaster();
        pm.WaitUntilStopped();
        pids.ForEach(p => ProcessControl.Signal(p, Signals.SIGKILL)); // no postmaster proves them backends now: this test stopped them
        Wait.Until(() => pids.All(p => !ProcessControl.IsAlive(p)), "the backends to die");
        Assert.Equal(6, DsmOrphanCleanup.FindTagged(config).Count); // everything is orphaned

        pm.Start();
        Assert.Matches(@"removed \d+ orphaned dynamic shared memory objects", pm.ServerLog());
        Wait.Until(() => Regex.Matches(pm.ServerLog(), "created dynamic shared memory segment").Count == 10, "the new instance's segments");
        Assert.Equal(6, DsmOrphanCleanup.FindTagged(config).Count); // only the new instance's
        pm.Stop();
        Assert.Empty(DsmOrphanCleanup.FindTagged(config));
        if (type == "mmap")
            Assert.Empty(Directory.EnumerateFiles(config.DynShmemDirectory));
    }

    [Fact]
    public void Reconcile_drops_exactly_the_dead_backends_references_and_leaves_the_others_running()
    {
        using var pm = Instance("reconcile-dsm", "posix", "worker.h.entry = 'dsm-hold'", "worker.h.argument = '3:64kB'",
            "worker.h.restart = never");
        pm.Start();
        Wait.Until(() => Regex.Matches(pm.ServerLog(), "created dynamic shared memory segment").Count == 3, "three segments");
        var handles = CreatedHandles(pm);
        string list = string.Join(',', handles);
        Assert.Equal(0, pm.Run("spawn", "--worker", "dsm-attach", "--argument", list, "--name", "a1").ExitCode);
        Assert.Equal(0, pm.Run("spawn", "--worker", "dsm-attach", "--argument", list, "--name", "a2").ExitCode);
        Wait.Until(() => Segments(pm).All(s => s.ReferenceCount == 4), "refcount 1 + 3 holders");
        var before = pm.Status().Backends;
        var holder = before.Single(b => b.Name == "h");
        Assert.Equal(3, holder.DsmSegments);

        pm.Kill(holder);
        pm.WaitForLog($"reconciled 3 dynamic shared memory references of background worker \"h\" (PID {holder.Pid})");
        var segs = Segments(pm);
        Assert.Equal(3, segs.Count);
        Assert.All(segs, s => Assert.Equal(3, s.ReferenceCount)); // exactly one reference less
        Assert.All(segs, s => Assert.DoesNotContain(holder.Pid!.Value, s.AttachedPids));
        var after = pm.Status().Backends;
        Assert.Equal(before.Where(b => b.Name != "h").Select(b => b.Pid).Order(), after.Select(b => b.Pid).Order()); // nobody else noticed

        // The last holders go: the segments are destroyed and gone from /dev/shm.
        Assert.Equal(0, pm.Run("terminate", "a1").ExitCode);
        var a2 = after.Single(b => b.Name == "a2");
        pm.Kill(a2);
        pm.WaitForLog($"reconciled 3 dynamic shared memory references of background worker \"a2\" (PID {a2.Pid})");
        Assert.Empty(Segments(pm));
        Assert.Single(DsmOrphanCleanup.FindTagged(ConfigOf(pm, "posix"))); // only the control segment
        pm.Stop();
    }

    [Fact]
    public void Full_restart_destroys_every_segment_including_pinned_ones_and_makes_a_new_control_segment()
    {
        using var pm = Instance("restart-dsm", "posix", "worker.p.entry = 'dsm-hold'", "worker.p.argument = '2:16kB:pin'",
            "worker.l.entry = 'lock-hold'");
        pm.Start();
        pm.WaitForLog("is holding lock");
        Wait.Until(() => Segments(pm).Count == 2, "two pinned segments");
        var oldHandles = Segments(pm).Select(s => (uint)s.Handle).ToList();
        long oldControl = pm.Shmem().DsmControlHandle;
        var l = pm.Status().Backends.Single(b => b.Name == "l");
        pm.Kill(l);
        pm.WaitForFullRestart();
        pm.WaitUntil(() => Regex.Matches(pm.ServerLog(), "created dynamic shared memory segment").Count == 4, "the restarted workers' segments");
        long newControl = pm.Shmem().DsmControlHandle;
        Assert.NotEqual(oldControl, newControl);
        Assert.Equal(3, DsmOrphanCleanup.FindTagged(ConfigOf(pm, "posix")).Count); // two new segments + the new control segment
        pm.Stop();
        Assert.Empty(DsmOrphanCleanup.FindTagged(ConfigOf(pm, "posix")));
    }

    [Fact]
    public void Main_region_segments_are_carved_from_min_dynamic_shared_memory()
    {
        using var pm = Instance("mainregion", "posix", "min_dynamic_shared_memory = 1MB", "worker.h.entry = 'dsm-hold'",
            "worker.h.argument = '2:64kB'");
        pm.Start();
        Wait.Until(() => Segments(pm).Count == 2, "two segments");
        Assert.All(Segments(pm), s => Assert.Equal("mainregion", s.Implementation.Replace("_", "").ToLowerInvariant()));
        Assert.Single(DsmOrphanCleanup.FindTagged(ConfigOf(pm, "posix"))); // no OS object but the control segment
        pm.Stop();
    }
}
