using System.Diagnostics;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Locks;

/// <summary>The lock state machine under threads of one process (one owner slot per thread).</summary>
public sealed class LWLockTests : IDisposable
{
    private readonly LockTestSegment _seg = new("lwlock");

    public void Dispose() => _seg.Dispose();

    [Fact]
    public void Exclusive_increments_from_8_threads_give_the_exact_total()
    {
        const int Threads = 8;
        const int Iterations = 20_000;
        var lwlock = _seg.Lock(0);
        TestThread.RunAll(Threads, slot =>
        {
            using var owner = _seg.Owner(slot);
            for (int i = 0; i < Iterations; i++)
            {
                owner.Acquire(lwlock, LWLockMode.Exclusive);
                ref long counter = ref _seg.Data(0);
                Volatile.Write(ref counter, Volatile.Read(ref counter) + 1); // not atomic: the lock makes it so
                owner.Release(lwlock);
            }
        });
        Assert.Equal(Threads * Iterations, _seg.Data(0));
        Assert.True(lwlock.ReadStatus().IsFree);
    }

    [Fact]
    public void Shared_holders_never_overlap_an_exclusive_holder()
    {
        const int Readers = 4;
        const int Writers = 2;
        const int Iterations = 10_000;
        var lwlock = _seg.Lock(0);
        int readersInside = 0, writersInside = 0, violations = 0;
        TestThread.RunAll(Readers + Writers, slot =>
        {
            bool writer = slot < Writers;
            using var owner = _seg.Owner(slot);
            for (int i = 0; i < Iterations; i++)
            {
                owner.Acquire(lwlock, writer ? LWLockMode.Exclusive : LWLockMode.Shared);
                if (writer)
                {
                    if (Interlocked.Increment(ref writersInside) != 1 || Volatile.Read(ref readersInside) != 0)
                        Interlocked.Increment(ref violations);
                    Interlocked.Decrement(ref writersInside);
                }
                else
                {
                    Interlocked.Increment(ref readersInside);
                    if (Volatile.Read(ref writersInside) != 0)
                        Interlocked.Increment(ref violations);
                    Interlocked.Decrement(ref readersInside);
                }
                owner.Release(lwlock);
            }
        });
        Assert.Equal(0, violations);
        Assert.True(lwlock.ReadStatus().IsFree);
    }

    [Fact]
    public void TryAcquire_follows_shared_and_exclusive_compatibility()
    {
        var lwlock = _seg.Lock(0);
        using var a = _seg.Owner(0);
        using var b = _seg.Owner(1);

        Assert.True(a.TryAcquire(lwlock, LWLockMode.Shared));
        Assert.True(b.TryAcquire(lwlock, LWLockMode.Shared));
        Assert.Equal(2, lwlock.ReadStatus().SharedHolders);
        b.Release(lwlock);
        Assert.False(b.TryAcquire(lwlock, LWLockMode.Exclusive));
        Assert.Equal(0, b.HeldCount); // a failed try leaves no entry
        a.Release(lwlock);

        Assert.True(a.TryAcquire(lwlock, LWLockMode.Exclusive));
        Assert.False(b.TryAcquire(lwlock, LWLockMode.Shared));
        Assert.False(b.TryAcquire(lwlock, LWLockMode.Exclusive));
        var status = lwlock.ReadStatus();
        Assert.True(status.IsExclusive);
        Assert.Equal(0, status.ExclusiveOwnerSlot);
        Assert.Equal(Environment.ProcessId, status.ExclusiveOwnerPid);
        a.Release(lwlock);

        Assert.True(b.TryAcquire(lwlock, LWLockMode.Exclusive));
        b.Release(lwlock);
        Assert.Equal(new LWLockStatus(false, 0, 0, false, 0, LockOwner.NoSlot), lwlock.ReadStatus());
    }

    [Fact]
    public void A_waiting_writer_blocks_new_shared_acquirers()
    {
        var lwlock = _seg.Lock(0);
        using var reader = _seg.Owner(0);
        using var other = _seg.Owner(1);
        reader.Acquire(lwlock, LWLockMode.Shared);

        var writer = TestThread.Start(() =>
        {
            using var owner = _seg.Owner(2);
            bool got = owner.Acquire(lwlock, LWLockMode.Exclusive, ClusterOptions.DefaultTimeout);
            if (got)
                owner.Release(lwlock);
            return got;
        });
        Wait.Until(() => lwlock.ReadStatus().ExclusiveWaiters == 1, "the writer to register as waiting");

        Assert.False(other.TryAcquire(lwlock, LWLockMode.Shared));
        reader.Release(lwlock);
        Assert.True(writer.Join());
        Assert.True(other.TryAcquire(lwlock, LWLockMode.Shared));
        other.Release(lwlock);
        Assert.True(lwlock.ReadStatus().IsFree);
        Assert.Equal(0, lwlock.ReadStatus().ExclusiveWaiters);
    }

    [Fact]
    public void Acquire_with_timeout_returns_false_within_the_bound()
    {
        var lwlock = _seg.Lock(0);
        using var holder = _seg.Owner(0);
        using var waiter = _seg.Owner(1);
        holder.Acquire(lwlock, LWLockMode.Exclusive);
        var timeout = TimeSpan.FromMilliseconds(200);

        foreach (var mode in new[] { LWLockMode.Exclusive, LWLockMode.Shared })
        {
            var sw = Stopwatch.StartNew();
            Assert.False(waiter.Acquire(lwlock, mode, timeout));
            Assert.InRange(sw.Elapsed, timeout * 0.9, ClusterOptions.DefaultTimeout);
            Assert.Equal(0, waiter.HeldCount);
        }
        Assert.Equal(0, lwlock.ReadStatus().ExclusiveWaiters); // the timed-out writer withdrew
        Assert.False(waiter.Acquire(lwlock, LWLockMode.Exclusive, TimeSpan.Zero));

        holder.Release(lwlock);
        Assert.True(waiter.Acquire(lwlock, LWLockMode.Exclusive, timeout));
        waiter.Release(lwlock);
    }

    [Fact]
    public void Exclusive_waiter_is_not_starved_by_continuous_shared_acquirers()
    {
        const int Readers = 4;
        var lwlock = _seg.Lock(0);
        long sharedAcquisitions = 0;
        int readersInside = 0;
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, Readers).Select(slot => TestThread.Start(() =>
        {
            using var owner = _seg.Owner(slot);
            while (!stop.IsCancellationRequested)
            {
                owner.Acquire(lwlock, LWLockMode.Shared);
                Interlocked.Increment(ref readersInside);
                Thread.SpinWait(2000); // hold it a while, so the readers' holds overlap
                Interlocked.Decrement(ref readersInside);
                owner.Release(lwlock);
                Interlocked.Increment(ref sharedAcquisitions);
            }
        })).ToArray();
        try
        {
            Wait.Until(() => Interlocked.Read(ref sharedAcquisitions) > 10_000, "the readers to be cycling");
            using var writer = _seg.Owner(Readers);
            long before = Interlocked.Read(ref sharedAcquisitions);
            Assert.True(writer.Acquire(lwlock, LWLockMode.Exclusive, ClusterOptions.DefaultTimeout), "the writer was starved");
            Assert.Equal(0, Volatile.Read(ref readersInside));
            writer.Release(lwlock);
            Wait.Until(() => Interlocked.Read(ref sharedAcquisitions) > before + 1000, "the readers to carry on");
        }
        finally
        {
            stop.Cancel();
            foreach (var reader in readers)
                reader.Join();
        }
        Assert.True(lwlock.ReadStatus().IsFree);
    }

    [Fact]
    public void Reacquiring_a_held_lock_throws_naming_the_lock_instead_of_hanging()
    {
        var lwlock = _seg.Lock(3);
        using var owner = _seg.Owner(0);
        owner.Acquire(lwlock, LWLockMode.Exclusive);

        var e = Assert.Throws<LWLockException>(() => owner.Acquire(lwlock, LWLockMode.Exclusive));
        Assert.Contains($"\"{LockTestSegment.TestTranche}\"", e.Message);
        Assert.Contains($"offset {_seg.LockOffset(3)}", e.Message);
        Assert.Contains("already held", e.Message);
        Assert.Throws<LWLockException>(() => owner.Acquire(lwlock, LWLockMode.Shared, TimeSpan.FromSeconds(1)));
        Assert.Throws<LWLockException>(() => owner.TryAcquire(lwlock, LWLockMode.Shared));
        Assert.Equal(1, owner.HeldCount);
        owner.Release(lwlock);

        owner.Acquire(lwlock, LWLockMode.Shared);
        Assert.Throws<LWLockException>(() => owner.Acquire(lwlock, LWLockMode.Exclusive));
        owner.Release(lwlock);
        Assert.True(lwlock.ReadStatus().IsFree);
    }

    [Fact]
    public void Releasing_a_lock_that_is_not_held_throws()
    {
        using var owner = _seg.Owner(0);
        var e = Assert.Throws<LWLockException>(() => owner.Release(_seg.Lock(1)));
        Assert.Contains("is not held", e.Message);
        owner.Acquire(_seg.Lock(0), LWLockMode.Shared);
        Assert.Throws<LWLockException>(() => owner.Release(_seg.Lock(1)));
        owner.Release(_seg.Lock(0));
    }

    [Fact]
    public void Locks_in_a_registered_tranche_are_named_by_it()
    {
        using var owner = _seg.Owner(0);
        int tranche = _seg.Tranches.Register(owner, "WorkerQueue");
        var lwlock = _seg.Segment.InitializeLock(_seg.LockOffset(7), tranche);
        Assert.Equal(tranche, lwlock.TrancheId);
        Assert.Equal($"\"WorkerQueue\" (segment 0 offset {_seg.LockOffset(7)})", owner.Describe(lwlock));
        Assert.Equal($"\"ShmemIndex\" ({_seg.Tranches.Builtin(BuiltinLWLock.ShmemIndex).Id})",
            owner.Describe(_seg.Tranches.Builtin(BuiltinLWLock.ShmemIndex)));
    }

    [Fact]
    public void A_lock_handle_on_memory_without_a_lock_is_rejected()
    {
        Assert.Throws<ShmemCorruptException>(() => _seg.Segment.Lock(_seg.DataOffset));
        Assert.Throws<ArgumentOutOfRangeException>(() => _seg.Segment.Lock(_seg.LocksOffset + 4));
        using var owner = _seg.Owner(0);
        Assert.Throws<ArgumentException>(() => owner.Acquire(default, LWLockMode.Exclusive));
        Assert.Throws<ArgumentOutOfRangeException>(() => owner.TryAcquire(_seg.Lock(0), (LWLockMode)3));
        Assert.Equal(0, owner.HeldCount);
    }
}
