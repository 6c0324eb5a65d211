using System.Diagnostics;
using Postmaster.Shmem;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Segments;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Dsm;

/// <summary>
/// A SysV DSM segment whose creator died between shmget and writing its header carries no instance tag, and when no
/// control segment lists it (the old one gone or corrupt) only the kernel's record of its creator can tell whose it
/// is. Orphan cleanup removes it when the dead instance's main segment recorded that creator as one of its backends
/// (<see cref="DsmOrphanEvidence"/>), and leaves alone the same kind of segment made by any other process. The
/// "backend that died before labelling" is ipcmk, which creates a segment (mode 0600, never attached) and exits.
/// </summary>
[Collection(DsmProcessCollection.Name)]
public sealed class DsmUnlabelledOrphanTests
{
    private const int Slot = 1;
    private const long Generation = 5;

    [Fact]
    public void An_unlabelled_SysV_segment_is_removed_only_when_its_dead_creator_was_a_backend_of_the_instance()
    {
        using var pm = new DsmTestInstance("unlabelled", DsmType.SysV);
        pm.Instance.Slots.Assign(Slot, Generation, "w", "dsm-hold", "", pooled: false);
        var (ours, creator) = CreateUnlabelled();
        var (foreign, _) = CreateUnlabelled();
        try
        {
            Assert.True(pm.Instance.Slots.MarkActive(Slot, Generation, creator)); // what the backend wrote before it died
            var evidence = new DsmOrphanEvidence();
            MainSegmentOrphans.CollectEvidence(pm.Instance, evidence);
            Assert.Contains(creator, evidence.Pids);

            var blind = DsmOrphanCleanup.Run(pm.Config, DsmHandle.Invalid, pm.Log);
            Assert.Equal(0, blind.UntrackedRemoved); // no table, no tag, no evidence: nothing proves it ours
            Assert.True(Exists(ours));

            var summary = DsmOrphanCleanup.Run(pm.Config, DsmHandle.Invalid, pm.Log, evidence);
            Assert.Equal(1, summary.UntrackedRemoved);
            Assert.Equal(0, summary.Failures);
            Assert.False(Exists(ours), "the segment created by the instance's dead backend survived cleanup");
            Assert.True(Exists(foreign), "a segment whose creator was never the instance's must be left alone");
            Assert.True(pm.Log.Contains(ShmemLogLevel.Debug, $"its creator, PID {creator}, was a process of the dead instance"));
        }
        finally
        {
            SysVShm.Remove(ours);
            SysVShm.Remove(foreign);
            pm.Instance.Slots.MarkInactive(Slot);
            pm.Instance.Slots.Free(Slot);
        }
    }

    /// <summary>A SysV segment (mode 0600, header never written, never attached) whose creator has exited: its id
    /// and the creator's pid.</summary>
    private static (int Id, int CreatorPid) CreateUnlabelled()
    {
        var psi = new ProcessStartInfo("ipcmk") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "-M", "65600", "-p", "0600" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(ClusterOptions.DefaultTimeout), "ipcmk did not finish");
        Assert.True(p.ExitCode == 0, output);
        int id = int.Parse(output.Trim().Split(':')[1].Trim());
        Assert.True(SysVShm.TryStat(id, out var info, out _));
        Assert.Equal(p.Id, info.CreatorPid);
        return (id, p.Id);
    }

    private static bool Exists(int id) => TestIpc.SysVIds().Contains(id);
}
