using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// One process slot's record of the locks it holds or is acquiring, in shared memory, so that the supervisor can
/// tell what a dead process held (PostgreSQL keeps this list in process-local memory only, which is why any crash
/// forces a full reset there). One record per owner slot, inside an <see cref="LWLockOwnerTable"/>.
/// <para>Protected by: the process that owns the slot (through its <see cref="LockOwner"/>); its threads claim free
/// entries with a CAS on <see cref="HeldLockEntry.Tag"/> (0 = free), so each entry has one writer at a time. Anyone may
/// read it without locking: a live process's record is a racy snapshot, a dead process's record is final. An entry is
/// claimed (phase Acquiring) before the lock's CAS and freed after the lock's release, so a reader never misses a lock
/// the process might hold (it may see one that was just released). Entries are unordered: readers scan all
/// <see cref="LockOwner.MaxHeldLocks"/> of them.</para>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct LWLockOwnerRecord
{
    public const int HeldOffset = 64;
    public const int Size = HeldOffset + LockOwner.MaxHeldLocks * HeldLockEntry.Size; // 3264 = 51 cache lines

    /// <summary>Pid of the process using this slot, 0 = free. Set by <see cref="LWLockOwnerTable.CreateOwner"/>,
    /// cleared by <see cref="LockOwner.Dispose"/> or the supervisor's <see cref="LWLockOwnerTable.ResetSlot"/>.</summary>
    [FieldOffset(0)] public int Pid;

    // Offset 4: unused (layout 1 kept a held count here; entries are now claimed independently).

    /// <summary>Nesting depth of critical sections (code that must not die halfway: a death with depth &gt; 0
    /// means shared state may be inconsistent and forces a full restart). 0 = none.</summary>
    [FieldOffset(8)] public int CriticalSectionDepth;

    /// <summary>The held (or being acquired) locks, in no order; an entry whose <see cref="HeldLockEntry.Tag"/> is 0 is free.</summary>
    [FieldOffset(HeldOffset)] public HeldLockArray Held;

    /// <summary>Entry <paramref name="index"/> of <see cref="Held"/>. Not the inline array's indexer: with a variable
    /// index it goes through Span&lt;HeldLockEntry&gt;, which ReadyToRun cannot precompile (a JIT compilation in every
    /// process that takes a lock).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe ref HeldLockEntry HeldAt(LWLockOwnerRecord* record, int index)
    {
        if ((uint)index >= LockOwner.MaxHeldLocks)
            ThrowIndexOutOfRange(index);
        return ref Unsafe.Add(ref Unsafe.As<HeldLockArray, HeldLockEntry>(ref record->Held), index);
    }

    // Out of line: an inlined interpolated-string throw makes every caller zero its string-handler locals.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowIndexOutOfRange(int index) =>
        throw new ArgumentOutOfRangeException(nameof(index), index, $"held-lock entries are 0..{LockOwner.MaxHeldLocks - 1}");
}

/// <summary>One owner-record entry: which lock (segment id, offset), its tranche (so it can be named without
/// mapping the segment), the mode, and whether it is held yet.</summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct HeldLockEntry
{
    public const int Size = 16;

    /// <summary>Byte offset of the lock from its segment's base.</summary>
    [FieldOffset(0)] public long Offset;

    /// <summary><see cref="LWLockSegment.MainSegmentId"/> (0) or a DSM handle.</summary>
    [FieldOffset(8)] public uint SegmentId;

    [FieldOffset(12)] public ushort TrancheId;

    [FieldOffset(14)] public LWLockMode Mode;

    [FieldOffset(15)] public HeldLockPhase Phase;

    /// <summary>The four fields above as one word, so that recording a lock costs two stores, not five:
    /// SegmentId | TrancheId &lt;&lt; 32 | Mode &lt;&lt; 48 | Phase &lt;&lt; 56 (little-endian).</summary>
    [FieldOffset(8)] public ulong Tag;

    public static ulong MakeTag(uint segmentId, ushort trancheId) => segmentId | (ulong)trancheId << 32;

    public static ulong WithModeAndPhase(ulong tag, LWLockMode mode, HeldLockPhase phase) =>
        tag | (ulong)mode << 48 | (ulong)phase << 56;

    /// <summary>The phase in a <see cref="Tag"/> value (0 = a free entry).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static HeldLockPhase PhaseOf(ulong tag) => (HeldLockPhase)(byte)(tag >> 56);

    /// <summary>The mode in a <see cref="Tag"/> value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LWLockMode ModeOf(ulong tag) => (LWLockMode)(byte)(tag >> 48);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool Is(in LWLockHandle lwlock) => Is(lwlock.Offset, lwlock.SegmentId);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool Is(long offset, uint segmentId) => Offset == offset && SegmentId == segmentId;
}

/// <summary>Fixed array of <see cref="LockOwner.MaxHeldLocks"/> entries, inline in the record.</summary>
[InlineArray(LockOwner.MaxHeldLocks)]
internal struct HeldLockArray
{
    private HeldLockEntry _first;
}
