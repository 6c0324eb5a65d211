using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;
using Xunit;

namespace Postmaster.Tests.Locks;

/// <summary>The owner's bookkeeping against a model: random sequences of acquires (plain, conditional, scoped holds),
/// releases in any order, holds released by another thread and re-acquires, past the thread's lane of 8 entries
/// into the overflow area. After every step the owner's answers (held or not, re-acquire refused, release of a lock not
/// held refused) and the shared record agree with the model, and at the end everything is free.</summary>
public sealed class LockOwnerModelTests : IDisposable
{
    private const int Locks = 24;

    private readonly LockTestSegment _seg = new("model", locks: Locks);

    public void Dispose() => _seg.Dispose();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Random_acquires_and_releases_keep_the_owner_exact(int seed)
    {
        using var owner = _seg.Owner(0);
        var random = new Random(seed);
        var held = new Dictionary<int, (LWLockMode Mode, LWLockHold? Hold)>();
        using var helper = new HelperThread();
        for (int step = 0; step < 4_000; step++)
        {
            int i = random.Next(held.Count > 12 ? 12 : Locks); // up to 24 at once: beyond the lane
            var lk = _seg.Lock(i);
            var mode = random.Next(2) == 0 ? LWLockMode.Shared : LWLockMode.Exclusive;
            switch (random.Next(6))
            {
                case 0: // plain acquire
                case 1:
                    if (held.ContainsKey(i))
                    {
                        var e = Assert.Throws<LWLockException>(() => owner.Acquire(lk, mode));
                        Assert.Contains("already held by this thread", e.Message);
                    }
                    else
                    {
                        owner.Acquire(lk, mode);
                        held[i] = (mode, null);
                    }
                    break;
                case 2: // scoped hold, or a conditional acquire
                    if (held.ContainsKey(i))
                    {
                        Assert.Throws<LWLockException>(() => owner.TryAcquire(lk, mode));
                    }
                    else if (random.Next(2) == 0)
                    {
                        held[i] = (mode, owner.Hold(lk, mode));
                    }
                    else
                    {
                        Assert.True(owner.TryAcquire(lk, mode));
                        held[i] = (mode, null);
                    }
                    break;
                case 3: // release on this thread
                case 4:
                    if (!held.TryGetValue(i, out var h))
                    {
                        Assert.Throws<LWLockException>(() => owner.Release(lk));
                        break;
                    }
                    if (h.Hold is { } token)
                        token.Dispose();
                    else
                        owner.Release(lk);
                    held.Remove(i);
                    break;
                default: // released by another thread (a hold that moved across an await)
                    if (!held.TryGetValue(i, out var moved))
                        break;
                    if (moved.Hold is { } t)
                        helper.Run(() => t.Dispose());
                    else
                        helper.Run(() => owner.Release(lk));
                    held.Remove(i);
                    break;
            }
            Assert.Equal(held.Count, owner.HeldCount);
            Assert.Equal(held.ContainsKey(i) ? held[i].Mode : null, owner.HeldMode(lk));
            if (held.TryGetValue(i, out var now) && now.Hold is { } hold)
                Assert.True(hold.IsHeld);
        }
        foreach (var (i, h) in held)
        {
            if (h.Hold is { } token)
                token.Dispose();
            else
                owner.Release(_seg.Lock(i));
        }
        Assert.Equal(0, owner.HeldCount);
        Assert.Empty(_seg.Inspector().HeldBy(0));
        Assert.All(Enumerable.Range(0, Locks), i => Assert.True(_seg.Lock(i).ReadStatus().IsFree));
    }

    /// <summary>A second thread that runs one action at a time, synchronously, rethrowing its failure.</summary>
    private sealed class HelperThread : IDisposable
    {
        private readonly Thread _thread;
        private readonly SemaphoreSlim _go = new(0);
        private readonly SemaphoreSlim _done = new(0);
        private Action? _work;
        private Exception? _error;

        public HelperThread()
        {
            _thread = new Thread(Loop) { IsBackground = true };
            _thread.Start();
        }

        public void Run(Action work)
        {
            _work = work;
            _go.Release();
            _done.Wait();
            if (_error is { } e)
                throw new InvalidOperationException("the helper thread failed", e);
        }

        public void Dispose()
        {
            _work = null;
            _go.Release();
            _thread.Join();
        }

        private void Loop()
        {
            while (true)
            {
                _go.Wait();
                if (_work is not { } work)
                    return;
                try
                {
                    work();
                }
                catch (Exception e)
                {
                    _error = e;
                }
                _done.Release();
            }
        }
    }
}
