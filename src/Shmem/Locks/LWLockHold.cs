namespace Postmaster.Shmem.Locks;

/// <summary>
/// A scoped hold of one lock, returned by <see cref="LockOwner.Hold"/>: disposing it releases exactly that hold, from
/// whichever thread disposes it (so <c>using var held = owner.Hold(lk, LWLockMode.Exclusive);</c> may span an
/// <c>await</c>). Disposing it a second time, or disposing a default value, does nothing.
/// </summary>
internal readonly struct LWLockHold : IDisposable
{
    private readonly LockOwner? _owner;
    private readonly LWLockHandle _lock;
    private readonly int _entry;
    private readonly long _sequence;

    internal LWLockHold(LockOwner owner, in LWLockHandle lwlock, int entry, long sequence)
    {
        _owner = owner;
        _lock = lwlock;
        _entry = entry;
        _sequence = sequence;
    }

    /// <summary>The lock this hold is of.</summary>
    public LWLockHandle Lock => _lock;

    /// <summary>True while the hold has not been released.</summary>
    public bool IsHeld => _owner is not null && _owner.IsHoldCurrent(_entry, _sequence);

    /// <summary>Releases the hold (no-op when already released).</summary>
    public void Dispose() => _owner?.ReleaseHold(_lock, _entry, _sequence);
}
