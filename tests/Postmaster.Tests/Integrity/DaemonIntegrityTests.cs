using System.Text.RegularExpressions;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Os;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Integrity;

/// <summary>Shared-memory integrity and the backends' log lines as seen through a running daemon and its log.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class DaemonIntegrityTests
{
    [Fact]
    public void Garbage_over_the_slot_array_header_is_seen_by_the_supervisor_at_the_next_exit_and_rebuilt()
    {
        // The backend side (a backend attaching to such memory exits 3 with one FATAL line) is BackendAttachTests;
        // here the supervisor reads the slot array when the worker exits, finds it invalid and rebuilds everything
        // once, instead of restarting the worker against the garbage.
        using var pm = Clusters.Bare("corrupt-slots", "worker.w.entry = 'exit'", "worker.w.argument = '1:300ms'", "worker.w.restart = on-failure",
            "worker.w.restart_delay = 50ms", "worker.w.restart_delay_max = 200ms");
        pm.Start();
        pm.WaitForBackends(b => b.Count == 1, "the worker");
        var c = pm.LockFile()!;
        using (var shmem = pm.AttachShmem())
        {
            Assert.True(shmem.Main.Index.TryFind(InstanceLayout.BackendSlotsName, out var slots));
            slots.Ref<uint>(0) = 0;
            Assert.Equal("backend slot array: wrong magic number 0x00000000 (expected 0x504D4253)", shmem.Validate());
            pm.WaitForLog("Shared memory failed validation: backend slot array: wrong magic number 0x00000000 (expected 0x504D4253)");
            pm.WaitForLog("all backends terminated; reinitializing");
        }
        Wait.Until(() => pm.LockFile() is { ShmKey: long k } lf && (k != c.ShmKey || lf.ShmId != c.ShmId) && lf.TrimmedStatus == "ready",
            "a new main segment");
        pm.WaitForBackends(b => b.Count == 1, "the worker in the new memory");
        Assert.DoesNotContain("exited with exit code 3", pm.ServerLog());
        pm.Stop();
    }

    [Fact]
    public void After_the_postmaster_is_killed_an_idle_worker_logs_exactly_one_FATAL_line()
    {
        using var pm = Clusters.Bare("pmdeath-oneline", "worker.w.entry = 'idle'");
        pm.Start();
        var w = pm.WaitForBackends(b => b.Count == 1, "the idle worker").Single();
        pm.KillPostmaster();
        Wait.Until(() => !ProcessControl.IsAlive(w.Pid!.Value), "the worker to exit after the postmaster died");
        pm.WaitUntilStopped();
        var fatal = pm.ServerLog().Split('\n').Where(l => Regex.IsMatch(l, $@"\[{w.Pid}\] FATAL:  ")).ToList();
        Assert.True(fatal.Count == 1, "FATAL lines of the worker:\n" + string.Join('\n', fatal));
        Assert.EndsWith("FATAL:  terminating background worker \"w\" due to unexpected postmaster exit", fatal[0]);
        pm.Start(); // the next start cleans up what the killed instance left
        pm.Stop();
    }
}
