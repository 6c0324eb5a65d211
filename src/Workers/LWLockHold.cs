using Engine = Postmaster.Shmem.Locks;

namespace Postmaster.Workers;

/// <summary>
/// A scoped hold of one lock, from <see cref="WorkerLocks.Hold"/>:
/// <c>using var held = context.Locks.Hold(lk, LWLockMode.Exclusive);</c> releases the lock at the end of the scope,
/// also when an exception leaves it. Disposing releases exactly this hold, from whichever thread disposes it (so the
/// scope may span an <c>await</c>); disposing it again, or disposing a default value, does nothing. Copies are the same
/// hold: the first one disposed releases it, the others then do nothing.
/// </summary>
public readonly struct LWLockHold : IDisposable
{
    private readonly Engine.LWLockHold _hold;

    internal LWLockHold(in Engine.LWLockHold hold) => _hold = hold;

    /// <summary>The lock this hold is of.</summary>
    public LWLockHandle Lock => new(_hold.Lock);

    /// <summary>True while the hold has not been released.</summary>
    public bool IsHeld => _hold.IsHeld;

    /// <summary>Releases the hold (nothing when already released).</summary>
    public void Dispose() => _hold.Dispose();
}
