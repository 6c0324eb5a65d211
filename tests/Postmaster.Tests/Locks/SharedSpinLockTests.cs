using Postmaster.Shmem.Locks;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Locks;

public sealed class SharedSpinLockTests : IDisposable
{
    private readonly LockTestSegment _seg = new("spin");

    public void Dispose() => _seg.Dispose();

    private ref SharedSpinLock Spin => ref _seg.Region.Ref<SharedSpinLock>(_seg.DataOffset + 512);

    [Fact]
    public void Increments_from_8_threads_under_the_spinlock_give_the_exact_total()
    {
        const int Threads = 8;
        const int Iterations = 50_000;
        TestThread.RunAll(Threads, _ =>
        {
            for (int i = 0; i < Iterations; i++)
            {
                Spin.Acquire();
                ref long counter = ref _seg.Data(0);
                Volatile.Write(ref counter, Volatile.Read(ref counter) + 1);
                Spin.Release();
            }
        });
        Assert.Equal(Threads * Iterations, _seg.Data(0));
        Assert.False(Spin.IsHeld);
    }

    [Fact]
    public void The_word_names_the_holder_and_try_variants_do_not_wait_past_their_bound()
    {
        Assert.True(Spin.TryAcquire());
        Assert.Equal(Environment.ProcessId, Spin.HolderPid);
        Assert.False(Spin.TryAcquire());

        Assert.False(TestThread.Start(() => Spin.TryAcquire(TimeSpan.FromMilliseconds(100))).Join());

        var sleeper = TestThread.Start(() => Spin.TryAcquire(ClusterOptions.DefaultTimeout));
        Wait.Until(() => (_seg.Region.Ref<int>(_seg.DataOffset + 512) & SharedSpinLock.ContendedBit) != 0,
            "the waiter to go to sleep on the futex");
        Spin.Release();
        Assert.True(sleeper.Join(), "the sleeping waiter was not woken");
        Assert.Equal(Environment.ProcessId, Spin.HolderPid);
        Spin.Release();
        Assert.Equal(0, Spin.HolderPid);
    }
}
