using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// Busy-waiting that stays in precompiled code. Thread.SpinWait and the SpinWait struct load the JIT into the process
/// on first use (their spin normalisation), so every backend that once met contention while starting (on the
/// shared-memory index, a lock) paid about 0.5 MB of memory and a few milliseconds for it. The processor's pause
/// (x86) or yield (Arm) hint is what they execute in the end.
/// </summary>
internal static class CpuPause
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Spin(int iterations)
    {
        for (int i = 0; i < iterations; i++)
        {
            if (X86Base.IsSupported)
                X86Base.Pause();
            else if (ArmBase.IsSupported)
                ArmBase.Yield();
        }
    }
}

/// <summary>The SpinWait struct's SpinOnce without its JIT cost: pauses that double, then yields the CPU.</summary>
internal struct Backoff
{
    private const int SpinRounds = 10;
    private int _count;

    public void Once()
    {
        if (_count < SpinRounds)
            CpuPause.Spin(1 << _count);
        else
            Thread.Yield();
        _count++;
    }
}
