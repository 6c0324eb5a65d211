using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// The per-slot lock owner records (<see cref="LWLockOwnerRecord"/>), one per process slot, in a region of the main
/// segment. Lifecycle: the postmaster sizes it with <see cref="RequiredSize"/>, places it and calls
/// <see cref="Initialize"/> before starting any child; every process calls <see cref="Attach"/> (which validates the
/// header) and then <see cref="CreateOwner"/> for the slot it was assigned; the supervisor reads records through an
/// <see cref="LWLockInspector"/> and clears a dead process's record with <see cref="ResetSlot"/> once it has dealt
/// with what the record lists. Never destroyed separately (it goes away with the segment).
/// <para>Layout: a 64-byte <see cref="LWLockOwnerTableHeader"/>, then SlotCount records of
/// <see cref="LWLockOwnerRecord.Size"/> bytes. Header immutable after initialisation.</para>
/// </summary>
internal sealed unsafe class LWLockOwnerTable
{
    private readonly ShmemRegion _region;

    private LWLockOwnerTable(ShmemRegion region, int slotCount)
    {
        _region = region;
        SlotCount = slotCount;
    }

    public int SlotCount { get; }

    /// <summary>Bytes needed for <paramref name="slotCount"/> slots (a multiple of the cache line).</summary>
    public static long RequiredSize(int slotCount)
    {
        if (slotCount < 1 || slotCount > LWLockOps.MaxSharedHolders)
            throw new ArgumentOutOfRangeException(nameof(slotCount), slotCount,
                $"the number of lock owner slots must be 1..{LWLockOps.MaxSharedHolders}");
        return LWLockOwnerTableHeader.Size + (long)slotCount * LWLockOwnerRecord.Size;
    }

    /// <summary>Creator side: writes the header and empty records. Only the postmaster calls this, before any
    /// other process can attach.</summary>
    public static LWLockOwnerTable Initialize(ShmemRegion region, int slotCount)
    {
        long size = RequiredSize(slotCount);
        if (region.Size < size)
            throw new ArgumentException($"lock owner table needs {size} bytes, the region has {region.Size}", nameof(region));
        ref var h = ref region.Ref<LWLockOwnerTableHeader>(0);
        h = default;
        h.LayoutVersion = LWLockOwnerTableHeader.CurrentLayoutVersion;
        h.TotalSize = size;
        h.SlotCount = slotCount;
        h.RecordSize = LWLockOwnerRecord.Size;
        h.MaxHeldLocks = LockOwner.MaxHeldLocks;
        var table = new LWLockOwnerTable(region, slotCount);
        for (int slot = 0; slot < slotCount; slot++)
            *table.Record(slot) = default; // every entry free (tag 0): threads claim entries by CAS from 0
        Volatile.Write(ref h.Magic, LWLockOwnerTableHeader.ExpectedMagic); // last: the table is valid from here
        return table;
    }

    /// <summary>Attaches to a table another process initialised; throws <see cref="ShmemCorruptException"/> when the
    /// header does not describe a table of this layout that fits the region.</summary>
    public static LWLockOwnerTable Attach(ShmemRegion region)
    {
        string? problem = ValidateHeader(region);
        if (problem is not null)
            throw new ShmemCorruptException("lock owner table is corrupt", problem);
        return new LWLockOwnerTable(region, region.Ref<LWLockOwnerTableHeader>(0).SlotCount);
    }

    /// <summary>True when the header checks pass (magic, version, record layout, counts fit the region).</summary>
    public static bool IsSane(ShmemRegion region) => ValidateHeader(region) is null;

    /// <summary>Name used in validation results.</summary>
    public const string StructureName = "lock owner table";

    /// <summary>
    /// Checks the table as the supervisor relies on it (it reads these records to choose between reconcile and full
    /// restart): the header (magic, version, record layout, slot count as at attach, size) and every record's held
    /// count (0..<see cref="LockOwner.MaxHeldLocks"/>), critical-section depth (≥ 0) and pid (≥ 0). Never throws.
    /// Null when valid, else the first problem.
    /// </summary>
    public string? Validate()
    {
        if (ShmemProblem.Named(StructureName, ValidateHeader(_region)) is { } problem)
            return problem;
        int declared = _region.Ref<LWLockOwnerTableHeader>(0).SlotCount;
        if (declared != SlotCount)
            return $"{StructureName}: slot count {declared} differs from {SlotCount}, the count at attach";
        for (int slot = 0; slot < SlotCount; slot++)
        {
            var record = Record(slot);
            if (EntryProblem(record) is { } entry)
                return $"{StructureName}: slot {slot} {entry}";
            int depth = Volatile.Read(ref record->CriticalSectionDepth);
            if (depth < 0)
                return $"{StructureName}: slot {slot} records critical-section depth {depth}";
            int pid = Volatile.Read(ref record->Pid);
            if (pid < 0)
                return $"{StructureName}: slot {slot} records pid {pid}";
        }
        return null;
    }

    /// <summary>The first entry of <paramref name="record"/> that is neither free nor a valid lock entry (a phase other
    /// than Acquiring/Held, or a mode other than Shared/Exclusive), as "entry N has …"; null when all are valid.</summary>
    private static string? EntryProblem(LWLockOwnerRecord* record)
    {
        for (int i = 0; i < LockOwner.MaxHeldLocks; i++)
        {
            ulong tag = Volatile.Read(ref LWLockOwnerRecord.HeldAt(record, i).Tag);
            if (tag == 0)
                continue;
            var phase = HeldLockEntry.PhaseOf(tag);
            var mode = HeldLockEntry.ModeOf(tag);
            if (phase is not (HeldLockPhase.Acquiring or HeldLockPhase.Held))
                return $"entry {i} has phase {(byte)phase} (expected {(byte)HeldLockPhase.Acquiring} or {(byte)HeldLockPhase.Held})";
            if (mode is not (LWLockMode.Shared or LWLockMode.Exclusive))
                return $"entry {i} has lock mode {(byte)mode} (expected {(byte)LWLockMode.Shared} or {(byte)LWLockMode.Exclusive})";
        }
        return null;
    }

    private static string? ValidateHeader(ShmemRegion region)
    {
        if (region.IsNull || region.Size < LWLockOwnerTableHeader.Size)
            return $"Region of {region.Size} bytes is too short to hold the header.";
        ref var h = ref region.Ref<LWLockOwnerTableHeader>(0);
        if (h.Magic != LWLockOwnerTableHeader.ExpectedMagic)
            return $"Magic number 0x{h.Magic:X8} does not match 0x{LWLockOwnerTableHeader.ExpectedMagic:X8}.";
        if (h.LayoutVersion != LWLockOwnerTableHeader.CurrentLayoutVersion)
            return $"Layout version {h.LayoutVersion} is not {LWLockOwnerTableHeader.CurrentLayoutVersion}.";
        if (h.RecordSize != LWLockOwnerRecord.Size || h.MaxHeldLocks != LockOwner.MaxHeldLocks)
            return $"Record size {h.RecordSize} / {h.MaxHeldLocks} locks does not match " +
                   $"{LWLockOwnerRecord.Size} / {LockOwner.MaxHeldLocks}.";
        if (h.SlotCount < 1 || h.SlotCount > LWLockOps.MaxSharedHolders)
            return $"Slot count {h.SlotCount} is out of range.";
        long size = RequiredSize(h.SlotCount);
        if (h.TotalSize != size || size > region.Size)
            return $"Size {h.TotalSize} does not match {size} for {h.SlotCount} slots, or exceeds the region of {region.Size} bytes.";
        return null;
    }

    /// <summary>
    /// Binds slot <paramref name="slot"/> to this process and returns its lock context. The backend launcher assigns
    /// slots (tests pick them explicitly); a slot is used by one process at a time (by any of its threads). Throws when the slot
    /// is out of range, still assigned to a live process, or still lists locks of a dead one (the supervisor must
    /// deal with those and call <see cref="ResetSlot"/> first).
    /// </summary>
    /// <param name="tranches">Used to name locks in error messages; null names them by tranche number.</param>
    public LockOwner CreateOwner(int slot, LWLockTrancheTable? tranches = null)
    {
        var record = Record(slot);
        int pid = Volatile.Read(ref record->Pid);
        int held = ReadHeldCount(slot);
        if (held != 0)
            throw new ShmemException($"lock owner slot {slot} still records {held} locks of process {pid}",
                hint: "The supervisor must reconcile a dead process's locks and reset its slot before reuse.");
        if (pid != 0 && ProcessControl.IsAlive(pid))
            throw new ShmemException($"lock owner slot {slot} is in use by process {pid}");
        record->CriticalSectionDepth = 0;
        Volatile.Write(ref record->Pid, ProcessControl.CurrentPid);
        return new LockOwner(record, slot, ProcessControl.CurrentPid, tranches);
    }

    /// <summary>Supervisor side: empties a slot's record (after the process has exited and whatever it held has been
    /// dealt with, typically by a full restart). Never blocks.</summary>
    public void ResetSlot(int slot)
    {
        var record = Record(slot);
        for (int i = 0; i < LockOwner.MaxHeldLocks; i++)
            Volatile.Write(ref LWLockOwnerRecord.HeldAt(record, i).Tag, 0);
        record->CriticalSectionDepth = 0;
        Volatile.Write(ref record->Pid, 0);
    }

    /// <summary>The pid recorded for <paramref name="slot"/>, 0 when free.</summary>
    public int RecordedPid(int slot) => Volatile.Read(ref Record(slot)->Pid);

    /// <summary>The critical-section depth recorded for <paramref name="slot"/>.</summary>
    public int CriticalSectionDepth(int slot) => Volatile.Read(ref Record(slot)->CriticalSectionDepth);

    /// <summary>How many locks the slot's record lists as held or being acquired, validated (the record may have been
    /// written by a process that died): throws <see cref="ShmemCorruptException"/> for an entry that is neither free nor
    /// valid.</summary>
    public int ReadHeldCount(int slot)
    {
        var record = Record(slot);
        if (EntryProblem(record) is { } problem)
            throw new ShmemCorruptException($"lock owner slot {slot} is corrupt", $"The record's {problem}.");
        int n = 0;
        for (int i = 0; i < LockOwner.MaxHeldLocks; i++)
            if (Volatile.Read(ref LWLockOwnerRecord.HeldAt(record, i).Tag) != 0)
                n++;
        return n;
    }

    internal LWLockOwnerRecord* Record(int slot)
    {
        if ((uint)slot >= (uint)SlotCount)
            throw new ArgumentOutOfRangeException(nameof(slot), slot, $"lock owner slots are 0..{SlotCount - 1}");
        return (LWLockOwnerRecord*)_region.Pointer(LWLockOwnerTableHeader.Size + (long)slot * LWLockOwnerRecord.Size);
    }
}

/// <summary>Header at offset 0 of an <see cref="LWLockOwnerTable"/>. ABI: any layout change (here or in
/// <see cref="LWLockOwnerRecord"/>) bumps <see cref="CurrentLayoutVersion"/>. Immutable after initialisation.</summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct LWLockOwnerTableHeader
{
    public const int Size = 64;
    public const uint ExpectedMagic = 0x4C4F_4D50; // "PMOL" little-endian
    public const uint CurrentLayoutVersion = 2; // 2: entries claimed independently by any thread (no held count)

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint LayoutVersion;
    [FieldOffset(8)] public long TotalSize;      // bytes, including this header
    [FieldOffset(16)] public int SlotCount;
    [FieldOffset(20)] public int RecordSize;     // LWLockOwnerRecord.Size when written
    [FieldOffset(24)] public int MaxHeldLocks;   // LockOwner.MaxHeldLocks when written
}
