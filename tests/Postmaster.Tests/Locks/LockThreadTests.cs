using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Locks;

/// <summary>One process's threads sharing its lock owner: contention between threads behaves like contention between
/// processes, re-acquiring on the same thread is refused, holds may move across an await, and the record stays exact
/// (so the supervisor's view of a process is right whatever its threads do).</summary>
public sealed class LockThreadTests : IDisposable
{
    private readonly LockTestSegment _seg = new("threads", locks: 16);

    public void Dispose() => _seg.Dispose();

    [Theory]
    [InlineData(2)]
    [InlineData(8)]
    public void Threads_contending_for_one_lock_wait_for_each_other(int threads)
    {
        using var owner = _seg.Owner(0);
        var lk = _seg.Lock(0);
        const int Rounds = 20_000;
        long counter = 0;
        int inside = 0, overlap = 0;
        RunThreads(threads, _ =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                owner.Acquire(lk, LWLockMode.Exclusive);
                if (Interlocked.Increment(ref inside) != 1)
                    Interlocked.Increment(ref overlap);
                counter++; // not atomic: only the lock makes it exact
                Interlocked.Decrement(ref inside);
                owner.Release(lk);
            }
        });
        Assert.Equal(0, overlap);
        Assert.Equal((long)threads * Rounds, counter);
        Assert.Equal(0, owner.HeldCount);
        Assert.True(lk.ReadStatus().IsFree);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(8)]
    public void Threads_taking_different_locks_never_interfere(int threads)
    {
        using var owner = _seg.Owner(0);
        var counts = new long[threads];
        RunThreads(threads, t =>
        {
            var mine = _seg.Lock(t);
            var shared = _seg.Lock(15);
            for (int i = 0; i < 20_000; i++)
            {
                using (owner.Hold(mine, LWLockMode.Exclusive))
                {
                    owner.Acquire(shared, LWLockMode.Shared); // nested: two entries of this thread at once
                    counts[t]++;
                    owner.Release(shared);
                }
            }
        });
        Assert.All(counts, c => Assert.Equal(20_000, c));
        Assert.Equal(0, owner.HeldCount);
        Assert.Empty(_seg.Inspector().HeldBy(0));
    }

    [Fact]
    public void Threads_holding_more_than_their_lane_share_the_rest_of_the_record()
    {
        using var seg = new LockTestSegment("threads-many", locks: 4 * 30);
        using var owner = seg.Owner(0);
        using var allHold = new Barrier(4);
        RunThreads(4, t =>
        {
            var mine = Enumerable.Range(t * 30, 30).Select(seg.Lock).ToList();
            foreach (var lk in mine)
                owner.Acquire(lk, LWLockMode.Exclusive);
            allHold.SignalAndWait(); // 120 locks held at once, 30 per thread: lanes, overflow and extra lanes
            Assert.All(mine, lk => Assert.True(owner.Holds(lk)));
            allHold.SignalAndWait();
            foreach (var lk in Enumerable.Reverse(mine))
                owner.Release(lk);
        });
        Assert.Equal(0, owner.HeldCount);
        Assert.All(Enumerable.Range(0, 120), i => Assert.True(seg.Lock(i).ReadStatus().IsFree));
    }

    [Fact]
    public void Shared_holders_on_many_threads_are_all_recorded_and_block_a_writer()
    {
        using var owner = _seg.Owner(0);
        var lk = _seg.Lock(1);
        using var allHold = new Barrier(5);
        using var release = new ManualResetEventSlim();
        var readers = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            owner.Acquire(lk, LWLockMode.Shared);
            allHold.SignalAndWait();
            release.Wait();
            owner.Release(lk);
        })).ToList();
        readers.ForEach(t => t.Start());
        allHold.SignalAndWait();
        Assert.Equal(4, lk.ReadStatus().SharedHolders);
        Assert.Equal(4, _seg.Inspector().HeldBy(0).Count(h => h.Phase == HeldLockPhase.Held && h.Mode == LWLockMode.Shared));
        Assert.False(owner.Acquire(lk, LWLockMode.Exclusive, TimeSpan.FromMilliseconds(20))); // this thread holds nothing
        release.Set();
        readers.ForEach(t => t.Join());
        Assert.True(owner.Acquire(lk, LWLockMode.Exclusive, TimeSpan.Zero));
        owner.Release(lk);
        Assert.Equal(0, owner.HeldCount);
    }

    [Fact]
    public void The_same_thread_acquiring_a_lock_it_holds_is_an_error_another_thread_waits()
    {
        using var owner = _seg.Owner(0);
        var lk = _seg.Lock(2);
        owner.Acquire(lk, LWLockMode.Shared);
        var e = Assert.Throws<LWLockException>(() => owner.Acquire(lk, LWLockMode.Shared));
        Assert.Contains("is already held by this thread", e.Message);
        Assert.Throws<LWLockException>(() => owner.Acquire(lk, LWLockMode.Exclusive));
        Assert.Equal(1, owner.HeldCount); // the refused attempts left nothing

        bool? otherGotIt = null;
        var other = new Thread(() => otherGotIt = owner.Acquire(lk, LWLockMode.Exclusive, TimeSpan.FromMilliseconds(30)));
        other.Start();
        other.Join();
        Assert.False(otherGotIt); // it waited (and timed out): not an error, not granted
        owner.Release(lk);
        Assert.True(lk.ReadStatus().IsFree);
        Assert.Equal(0, owner.HeldCount);
    }

    [Fact]
    public async Task A_hold_taken_before_an_await_is_released_on_the_continuation_thread()
    {
        using var owner = _seg.Owner(0);
        var lk = _seg.Lock(3);
        var (before, after) = await Task.Run(async () =>
        {
            using var held = owner.Hold(lk, LWLockMode.Exclusive);
            int t0 = Environment.CurrentManagedThreadId;
            Assert.True(held.IsHeld);
            await Task.Delay(20).ConfigureAwait(false);
            await Task.Yield();
            return (t0, Environment.CurrentManagedThreadId);
        });
        Assert.True(lk.ReadStatus().IsFree, $"acquired on thread {before}, released on {after}");
        Assert.Equal(0, owner.HeldCount);
        Assert.Empty(_seg.Inspector().HeldBy(0));
    }

    [Fact]
    public void Release_by_handle_on_another_thread_releases_a_hold_that_moved()
    {
        using var owner = _seg.Owner(0);
        var lk = _seg.Lock(4);
        owner.Acquire(lk, LWLockMode.Exclusive);
        var t = new Thread(() => owner.Release(lk));
        t.Start();
        t.Join();
        Assert.True(lk.ReadStatus().IsFree);
        Assert.Equal(0, owner.HeldCount);
        owner.Acquire(lk, LWLockMode.Exclusive); // the first thread's stale view does not claim it still holds it
        owner.Release(lk);
        Assert.Throws<LWLockException>(() => owner.Release(lk));
    }

    [Fact]
    public void A_hold_disposed_twice_releases_once()
    {
        using var owner = _seg.Owner(0);
        var lk = _seg.Lock(5);
        var held = owner.Hold(lk, LWLockMode.Exclusive);
        held.Dispose();
        Assert.False(held.IsHeld);
        using var again = owner.Hold(lk, LWLockMode.Exclusive); // the entry may be reused by the next hold
        held.Dispose(); // the stale copy must not release the new hold
        Assert.True(again.IsHeld);
        Assert.False(lk.ReadStatus().IsFree);
    }

    [Fact]
    public void ReleaseAll_releases_every_threads_locks_reports_them_and_stops_sleeping_acquirers()
    {
        using var owner = _seg.Owner(0);
        var a = _seg.Lock(6);
        var b = _seg.Lock(7);
        using var holding = new ManualResetEventSlim();
        var holder = new Thread(() =>
        {
            owner.Acquire(a, LWLockMode.Exclusive);
            holding.Set();
        });
        holder.Start();
        holder.Join(); // the thread ended with the lock held
        holding.Wait();
        using var otherSegmentOwner = _seg.Owner(1);
        otherSegmentOwner.Acquire(b, LWLockMode.Exclusive); // b is busy: a waiter in slot 0 sleeps
        Exception? waiterError = null;
        var waiter = new Thread(() =>
        {
            try
            {
                owner.Acquire(b, LWLockMode.Exclusive);
            }
            catch (Exception e)
            {
                waiterError = e;
            }
        });
        waiter.Start();
        Wait.Until(() => b.ReadStatus().HasWaiters, "the waiter sleeps on b");

        var released = new List<string>();
        Assert.True(owner.ReleaseAll((name, mode) => released.Add($"{name} {mode}"), TimeSpan.FromSeconds(10)));
        waiter.Join();
        Assert.Equal([$"\"{LockTestSegment.TestTranche}\" ({a.Id}) Exclusive"], released);
        Assert.IsType<LWLockException>(waiterError);
        Assert.Contains("the process is exiting", waiterError!.Message);
        Assert.True(a.ReadStatus().IsFree);
        Assert.Equal(0, owner.HeldCount);
        Assert.Equal(0, b.ReadStatus().ExclusiveWaiters); // the waiter withdrew its registration
        otherSegmentOwner.Release(b);
        Assert.True(b.ReadStatus().IsFree);
    }

    [Fact]
    public void Critical_sections_count_over_threads()
    {
        using var owner = _seg.Owner(0);
        RunThreads(4, _ =>
        {
            for (int i = 0; i < 10_000; i++)
            {
                owner.EnterCriticalSection();
                owner.ExitCriticalSection();
            }
        });
        Assert.Equal(0, owner.CriticalSectionDepth);
        Assert.Throws<InvalidOperationException>(owner.ExitCriticalSection);
        Assert.Equal(0, owner.CriticalSectionDepth);
    }

    private static void RunThreads(int count, Action<int> body)
    {
        var errors = new List<Exception>();
        var threads = Enumerable.Range(0, count).Select(t => new Thread(() =>
        {
            try
            {
                body(t);
            }
            catch (Exception e)
            {
                lock (errors)
                    errors.Add(e);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (errors.Count > 0)
            throw new AggregateException(errors);
    }
}
