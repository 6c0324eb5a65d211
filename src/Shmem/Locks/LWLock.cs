using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// A lightweight lock as it lies in shared memory: one cache line, plain data, no pointers. ABI: any layout change
/// bumps the layout versions of the structures that embed locks. Created by <see cref="LWLockSegment.InitializeLock"/>
/// in whichever process lays out the surrounding structure (before any other process can see it); never destroyed
/// (it goes away with its segment). All state changes go through <see cref="LWLockOps"/>; processes reach it through
/// an <see cref="LWLockHandle"/>.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct LWLock
{
    /// <summary>Bytes per lock: a full cache line, so two locks never share one (no false sharing).</summary>
    public const int Size = 64;

    public const uint ExpectedMagic = 0x4B4C_574C; // "LWLK" little-endian: unlike zeroed or random memory

    /// <summary>The futex word; encoding in <see cref="LWLockOps"/> (shared count, exclusive bit, waiter flag,
    /// exclusive-waiter count). Changed only with Interlocked operations.</summary>
    [FieldOffset(0)] public int State;

    /// <summary><see cref="ExpectedMagic"/> once initialised. Immutable after initialisation.</summary>
    [FieldOffset(4)] public uint Magic;

    /// <summary>Tranche id (index in the <see cref="LWLockTrancheTable"/>); names the lock in messages.
    /// Immutable after initialisation.</summary>
    [FieldOffset(8)] public int TrancheId;

    /// <summary>Pid of the exclusive holder, 0 = none. Diagnostics only (the owner records are authoritative):
    /// written by the holder right after its acquiring CAS and cleared right before its release, so a process killed
    /// in between leaves it empty or stale. Protected by: the exclusive lock itself.</summary>
    [FieldOffset(16)] public int ExclusiveOwnerPid;

    /// <summary>Owner slot of the exclusive holder, <see cref="LockOwner.NoSlot"/> = none. Same rules as
    /// <see cref="ExclusiveOwnerPid"/>.</summary>
    [FieldOffset(20)] public int ExclusiveOwnerSlot;

    /// <summary><see cref="ExclusiveOwnerPid"/> (low half) and <see cref="ExclusiveOwnerSlot"/> (high half) as one
    /// word, so the fast path sets or clears both with one store (both supported architectures are little-endian).</summary>
    [FieldOffset(16)] public long ExclusiveOwner;

    /// <summary>The value of <see cref="ExclusiveOwner"/> when nobody holds the lock exclusively.</summary>
    public const long NoExclusiveOwner = (long)LockOwner.NoSlot << 32;

    public static long MakeExclusiveOwner(int pid, int slot) => ((long)slot << 32) | (uint)pid;
}
