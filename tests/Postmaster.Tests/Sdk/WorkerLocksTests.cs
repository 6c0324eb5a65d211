using Postmaster.Shmem.Errors;
using Postmaster.Tests.Locks;
using Postmaster.Workers;
using Xunit;

namespace Postmaster.Tests.Sdk;

/// <summary>The SDK's lock facade over the engine's lock owner: the same locks, the same rules.</summary>
public sealed class WorkerLocksTests : IDisposable
{
    private readonly LockTestSegment _seg = new("sdk-locks");

    public void Dispose() => _seg.Dispose();

    private LWLockHandle Lock(int i) => new(_seg.Lock(i));

    [Fact]
    public void A_hold_releases_its_lock_when_disposed_and_only_once()
    {
        using var owner = _seg.Owner(0);
        var locks = new WorkerLocks(owner);
        var lk = Lock(0);
        var held = locks.Hold(lk, LWLockMode.Exclusive);
        Assert.Equal(lk, held.Lock);
        Assert.True(held.IsHeld);
        Assert.True(locks.Holds(lk));
        Assert.False(_seg.Lock(0).ReadStatus().IsFree);
        held.Dispose();
        Assert.False(held.IsHeld);
        Assert.False(locks.Holds(lk));
        Assert.True(_seg.Lock(0).ReadStatus().IsFree);
        held.Dispose(); // released already: nothing, even with the lock taken again meanwhile
        using var again = locks.Hold(lk, LWLockMode.Shared);
        held.Dispose();
        Assert.True(again.IsHeld);
        default(LWLockHold).Dispose(); // an empty hold releases nothing
        Assert.Equal(1, owner.HeldCount);
    }

    [Fact]
    public void A_using_hold_releases_when_an_exception_leaves_its_scope()
    {
        using var owner = _seg.Owner(1);
        var locks = new WorkerLocks(owner);
        var lk = Lock(1);
        void Scope()
        {
            using var held = locks.Hold(lk, LWLockMode.Shared);
            throw new InvalidOperationException("inside the hold");
        }
        Assert.Throws<InvalidOperationException>(Scope);
        Assert.False(locks.Holds(lk));
        Assert.True(_seg.Lock(1).ReadStatus().IsFree);
    }

    [Fact]
    public void A_hold_taken_on_one_thread_is_released_on_another()
    {
        using var owner = _seg.Owner(4);
        var locks = new WorkerLocks(owner);
        var lk = Lock(3);
        var held = locks.Hold(lk, LWLockMode.Exclusive);
        bool heldThere = false;
        var other = new Thread(() => // as async code's continuation would
        {
            heldThere = held.IsHeld;
            held.Dispose();
        });
        other.Start();
        other.Join();
        Assert.True(heldThere);
        Assert.True(_seg.Lock(3).ReadStatus().IsFree);
        Assert.False(locks.Holds(lk));
    }

    [Fact]
    public void Acquire_try_and_release_forward_to_the_engine_with_its_errors()
    {
        using var owner = _seg.Owner(2);
        using var other = _seg.Owner(3);
        var locks = new WorkerLocks(owner);
        var others = new WorkerLocks(other);
        var lk = Lock(2);
        locks.Acquire(lk, LWLockMode.Exclusive);
        Assert.False(others.TryAcquire(lk, LWLockMode.Shared));
        Assert.False(others.Acquire(lk, LWLockMode.Shared, TimeSpan.FromMilliseconds(1)));
        var again = Assert.Throws<LWLockException>(() => locks.Acquire(lk, LWLockMode.Shared));
        Assert.Contains("is already held by this thread", again.Message);
        Assert.Contains(LockTestSegment.TestTranche, locks.Describe(lk));
        locks.Release(lk);
        Assert.True(others.TryAcquire(lk, LWLockMode.Shared));
        others.Release(lk);
        Assert.Throws<LWLockException>(() => locks.Release(lk));
        Assert.Throws<ArgumentException>(() => locks.Acquire(default, LWLockMode.Exclusive));
    }

    [Fact]
    public void The_sdk_enums_have_the_engine_values()
    {
        Assert.Equal((byte)Shmem.Locks.LWLockMode.Shared, (byte)LWLockMode.Shared);
        Assert.Equal((byte)Shmem.Locks.LWLockMode.Exclusive, (byte)LWLockMode.Exclusive);
        Assert.Equal((int)Shmem.Dsm.DsmCreateFlags.NullIfMaxSegments, (int)DsmCreateFlags.NullIfMaxSegments);
        Assert.Equal((int)Shmem.Dsm.DsmCreateFlags.Zeroed, (int)DsmCreateFlags.Zeroed);
        Assert.Equal(Enum.GetValues<Shmem.Registry.DsmRegistryEntryState>().Select(v => ((int)v, v.ToString())),
            Enum.GetValues<DsmRegistryEntryState>().Select(v => ((int)v, v.ToString())));
    }
}
