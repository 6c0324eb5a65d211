using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Os;
using Xunit;

namespace Postmaster.Tests.Dsm;

/// <summary>Crash recovery without a full restart: the supervisor gives back exactly what a SIGKILLed backend held,
/// and finishes segments whose creator or destroyer died.</summary>
[Collection(DsmProcessCollection.Name)]
public sealed class DsmReconcileTests
{
    [Theory]
    [MemberData(nameof(DsmTestInstance.Kinds), MemberType = typeof(DsmTestInstance))]
    public void Reconcile_drops_exactly_the_dead_backend_references_and_destroys_what_nobody_holds(DsmKind kind, long mainRegion)
    {
        using var pm = new DsmTestInstance("reconcile", (DsmType)kind, mainRegion: mainRegion);
        var a = pm.Session(0);
        using var shared = a.Create(8192)!;
        var pinned = a.Create(8192)!;
        a.Pin(pinned);
        a.Detach(pinned);
        DsmHandle own;
        using (var child = pm.StartChild(3))
        {
            child.WriteLine($"attach {shared.Handle}");
            child.WaitForLine("attached");
            child.WriteLine($"attach {pinned.Handle}");
            child.WaitForLine("attached");
            child.WriteLine("create 4096");
            own = DsmHandle.Parse(child.WaitForLine("created").Split(' ')[1]);
            Assert.Equal(3, pm.Row(shared.Handle)!.ReferenceCount);
            Assert.Equal(3, pm.Row(pinned.Handle)!.ReferenceCount);
            Assert.Equal(2, pm.Row(own)!.ReferenceCount);
            child.Kill(Signals.SIGKILL);
            child.WaitForExit();
        }
        Assert.Equal(3, pm.Row(shared.Handle)!.ReferenceCount); // the dead child's references leak until reconciled

        var result = pm.Control.ReconcileSlot(3);

        Assert.Equal(new DsmReconcileResult(DsmReconcileStatus.Done, 3, 1, 0, 0), result);
        Assert.Equal(2, pm.Row(shared.Handle)!.ReferenceCount);  // ours
        Assert.Equal(2, pm.Row(pinned.Handle)!.ReferenceCount);  // the pin
        Assert.Null(pm.Row(own));                                 // nobody held it: destroyed
        Assert.Equal(2, pm.Control.Inspect().Count);
        Assert.All(pm.Control.Inspect(), r => Assert.DoesNotContain(r.AttachedBy, x => x.Slot == 3));
        Assert.Equal(mainRegion > 0 ? 1 : 3, pm.Tagged().Count); // the control segment (+ two OS segments)
        Assert.Equal(new DsmReconcileResult(DsmReconcileStatus.Done, 0, 0, 0, 0), pm.Control.ReconcileSlot(3)); // idempotent
        pm.Instance.Owners.ResetSlot(3);
        using var reused = pm.Session(3).Attach(shared.Handle)!; // the slot works again
        a.Unpin(pinned.Handle);
    }

    [Fact]
    public void A_backend_that_died_holding_the_control_lock_is_not_reconciled()
    {
        using var pm = new DsmTestInstance("reconcile-lock", DsmType.Posix);
        DsmHandle h;
        using (var child = pm.StartChild(5))
        {
            child.WriteLine("create 4096");
            h = DsmHandle.Parse(child.WaitForLine("created").Split(' ')[1]);
            child.WriteLine("hold-lock");
            child.WaitForLine("holding-lock");
            child.Kill(Signals.SIGKILL);
            child.WaitForExit();
        }
        Assert.Equal(new DsmReconcileResult(DsmReconcileStatus.DiedHoldingLock, 0, 0, 0, 0), pm.Control.ReconcileSlot(5));
        Assert.Equal(DsmReconcileStatus.Done, pm.Control.FinishAbandoned(TimeSpan.FromMilliseconds(50)).Status); // nothing to do: no lock needed
        Assert.Equal(2, pm.Row(h)!.ReferenceCount);                  // untouched: a full restart must clean up
        Assert.Equal(new DsmShutdownSummary(false, 1, 0), pm.Control.DestroyAll()); // which takes no lock
    }

    [Fact]
    public void A_creator_that_died_in_the_creating_window_leaves_nothing_after_reconcile()
    {
        using var pm = new DsmTestInstance("reconcile-creating", DsmType.SysV);
        DsmHandle h;
        using (var child = pm.StartChild(1))
        {
            child.WriteLine("create-stuck 50000");
            h = DsmHandle.Parse(child.WaitForLine("creating").Split(' ')[1]);
            child.Kill(Signals.SIGKILL);
            child.WaitForExit();
        }
        Assert.Equal(DsmItemState.Creating, pm.Row(h)!.State);
        Assert.Equal(2, pm.Tagged().Count);
        var result = pm.Control.ReconcileSlot(1);
        Assert.Equal(new DsmReconcileResult(DsmReconcileStatus.Done, 0, 1, 1, 0), result);
        Assert.Null(pm.Row(h));
        Assert.Single(pm.Tagged()); // the control segment
    }

    [Theory]
    [InlineData(DsmKind.Posix)]
    [InlineData(DsmKind.Mmap)]
    public void A_moribund_segment_whose_destroyer_died_is_finished_by_the_supervisor(DsmKind kind)
    {
        using var pm = new DsmTestInstance("reconcile-moribund", (DsmType)kind);
        DsmHandle h;
        using (var child = pm.StartChild(6))
        {
            child.WriteLine("create 4096");
            h = DsmHandle.Parse(child.WaitForLine("created").Split(' ')[1]);
            child.WriteLine($"detach-stuck {h}");
            child.WaitForLine("destroying");
            child.Kill(Signals.SIGKILL);
            child.WaitForExit();
        }
        var row = pm.Row(h)!;
        Assert.Equal(DsmItemState.Destroying, row.State);
        Assert.Equal(1, row.ReferenceCount);
        Assert.Null(pm.Session(0).Attach(h)); // moribund: not attachable
        var result = pm.Control.FinishAbandoned();
        Assert.Equal(new DsmReconcileResult(DsmReconcileStatus.Done, 0, 1, 1, 0), result);
        Assert.Null(pm.Row(h));
        Assert.Single(pm.Tagged());
        Assert.Equal(new DsmReconcileResult(DsmReconcileStatus.Done, 0, 0, 0, 0), pm.Control.ReconcileSlot(6));
    }

    [Fact]
    public void A_slot_whose_dead_process_was_not_reconciled_cannot_be_reused_until_it_is()
    {
        using var pm = new DsmTestInstance("reconcile-reuse", DsmType.Posix);
        using (var child = pm.StartChild(7))
        {
            child.WriteLine("create 4096");
            child.WaitForLine("created");
            child.Kill(Signals.SIGKILL);
            child.WaitForExit();
        }
        var owner = pm.Instance.Owners.CreateOwner(7, pm.Instance.Tranches);
        var e = Assert.Throws<Postmaster.Shmem.Errors.ShmemException>(() => new DsmSession(pm.Instance, owner, pm.Config));
        Assert.StartsWith("dynamic shared memory attachment record of slot 7 still lists 1 segments of process", e.Message);
        owner.Dispose();
        Assert.Equal(1, pm.Control.ReconcileSlot(7).SegmentsDestroyed);
        using var session = pm.Session(7);
        Assert.Equal(0, session.AttachedCount);
    }

    [Fact]
    public void Reconciling_the_slot_of_a_live_process_is_refused()
    {
        using var pm = new DsmTestInstance("reconcile-live", DsmType.Posix);
        using var child = pm.StartChild(2);
        child.WriteLine("create 4096");
        child.WaitForLine("created");
        Assert.Throws<InvalidOperationException>(() => pm.Control.ReconcileSlot(2));
        child.WriteLine("exit");
        Assert.Equal(0, child.WaitForExit());
    }
}
