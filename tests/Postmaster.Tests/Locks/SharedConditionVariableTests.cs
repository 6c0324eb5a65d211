using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Locks;

public sealed class SharedConditionVariableTests : IDisposable
{
    private readonly LockTestSegment _seg = new("condvar");

    public void Dispose() => _seg.Dispose();

    private ref SharedConditionVariable Cv => ref _seg.Region.Ref<SharedConditionVariable>(_seg.DataOffset + 256);

    [Fact]
    public void Broadcast_wakes_every_waiter_once_the_predicate_holds()
    {
        const int Waiters = 3;
        var lwlock = _seg.Lock(0);
        int waiting = 0;
        var waiters = Enumerable.Range(0, Waiters).Select(slot => TestThread.Start(() =>
        {
            using var owner = _seg.Owner(slot);
            owner.Acquire(lwlock, LWLockMode.Exclusive);
            Interlocked.Increment(ref waiting);
            bool woken = Cv.Wait(owner, lwlock, () => _seg.Data(0) >= 2, ClusterOptions.DefaultTimeout);
            bool holds = owner.HeldMode(lwlock) == LWLockMode.Exclusive;
            owner.Release(lwlock);
            return woken && holds;
        })).ToArray();

        using var setter = _seg.Owner(Waiters);
        Wait.Until(() => Volatile.Read(ref waiting) == Waiters && lwlock.ReadStatus().IsFree, "the waiters to sleep");
        for (int value = 1; value <= 2; value++)
        {
            setter.Acquire(lwlock, LWLockMode.Exclusive);
            _seg.Data(0) = value; // 1 does not satisfy the predicate: waiters wake and sleep again
            setter.Release(lwlock);
            Cv.Broadcast();
        }
        Assert.All(waiters, t => Assert.True(t.Join()));
    }

    [Fact]
    public void Wait_times_out_with_the_lock_held_again_and_requires_the_lock()
    {
        var lwlock = _seg.Lock(0);
        using var owner = _seg.Owner(0);
        Assert.Throws<LWLockException>(() => Cv.Wait(owner, lwlock, () => false, TimeSpan.Zero));

        owner.Acquire(lwlock, LWLockMode.Shared);
        Assert.False(Cv.Wait(owner, lwlock, () => false, TimeSpan.FromMilliseconds(50)));
        Assert.Equal(LWLockMode.Shared, owner.HeldMode(lwlock));
        Assert.True(Cv.Wait(owner, lwlock, () => true, TimeSpan.Zero));
        owner.Release(lwlock);
    }

    [Fact]
    public void Signal_wakes_a_waiter()
    {
        var lwlock = _seg.Lock(1);
        var waiter = TestThread.Start(() =>
        {
            using var owner = _seg.Owner(0);
            owner.Acquire(lwlock, LWLockMode.Exclusive);
            _seg.Data(1) = 1; // "I am about to wait"
            bool woken = Cv.Wait(owner, lwlock, () => _seg.Data(2) == 1, ClusterOptions.DefaultTimeout);
            owner.Release(lwlock);
            return woken;
        });

        using var setter = _seg.Owner(1);
        Wait.Until(() => Volatile.Read(ref _seg.Data(1)) == 1, "the waiter to start");
        setter.Acquire(lwlock, LWLockMode.Exclusive); // succeeds only once the waiter released it inside Wait
        _seg.Data(2) = 1;
        setter.Release(lwlock);
        Cv.Signal();
        Assert.True(waiter.Join());
    }
}
