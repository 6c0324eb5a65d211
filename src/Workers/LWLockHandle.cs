using Engine = Postmaster.Shmem.Locks;

namespace Postmaster.Workers;

/// <summary>
/// This process's reference to one lightweight lock in shared memory (from <see cref="WorkerContext.NamedLock"/>).
/// Cheap to copy; valid while the process runs. It holds an address that is meaningful in this process only, so it is
/// never stored in shared memory: other processes get the same lock by its name. Locking goes through
/// <see cref="WorkerContext.Locks"/>. The default value is an empty handle (<see cref="IsNull"/>) that no lock
/// operation accepts.
/// </summary>
public readonly struct LWLockHandle : IEquatable<LWLockHandle>
{
    internal readonly Engine.LWLockHandle Inner;

    internal LWLockHandle(in Engine.LWLockHandle value) => Inner = value;

    /// <summary>True for the default (empty) handle.</summary>
    public bool IsNull => Inner.IsNull;

    /// <summary>The segment the lock lives in: 0 for the main segment, else a dynamic shared memory handle. With
    /// <see cref="Offset"/> it names the lock in every process.</summary>
    public uint SegmentId => Inner.SegmentId;

    /// <summary>The lock's byte offset from the start of its segment.</summary>
    public long Offset => Inner.Offset;

    /// <summary>True when both name the same lock.</summary>
    /// <param name="other">The other handle.</param>
    public bool Equals(LWLockHandle other) => Inner.Equals(other.Inner);

    /// <summary>True when <paramref name="obj"/> is a handle of the same lock.</summary>
    /// <param name="obj">The object to compare with.</param>
    public override bool Equals(object? obj) => obj is LWLockHandle other && Equals(other);

    /// <summary>A hash of the lock's identity (segment and offset).</summary>
    public override int GetHashCode() => Inner.GetHashCode();

    /// <summary>True when both name the same lock.</summary>
    /// <param name="left">One handle.</param>
    /// <param name="right">The other handle.</param>
    public static bool operator ==(LWLockHandle left, LWLockHandle right) => left.Equals(right);

    /// <summary>True when they name different locks.</summary>
    /// <param name="left">One handle.</param>
    /// <param name="right">The other handle.</param>
    public static bool operator !=(LWLockHandle left, LWLockHandle right) => !left.Equals(right);

    /// <summary>"segment S offset O"; <see cref="WorkerLocks.Describe"/> adds the lock's name.</summary>
    public override string ToString() => Inner.ToString();
}
