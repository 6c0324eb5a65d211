using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// Layout of the DSM control segment, after its <see cref="DsmSegmentHeader"/>:
/// <code>
/// [DsmControlHeader, 128 B][Capacity × DsmControlItem, 64 B each][SlotCount × attachment record, RecordSize B each]
/// </code>
/// ABI: any change here bumps <see cref="DsmControlHeader.CurrentLayoutVersion"/>. Sizes are computed overflow-checked.
/// </summary>
internal static class DsmControlLayout
{
    /// <summary>Most items a control segment can have: keeps 11 bits (2047 values) for handle generations.</summary>
    public const int MaxCapacity = 1 << 20;

    /// <summary>Most segments one backend slot can have attached (or pinned) at once.</summary>
    public const int MaxAttachmentsPerSlot = 256;

    /// <summary>Items beyond the per-backend share (PostgreSQL's PG_DYNSHMEM_FIXED_SLOTS).</summary>
    public const int FixedItems = 64;

    /// <summary>Items per backend (PostgreSQL's PG_DYNSHMEM_SLOTS_PER_BACKEND).</summary>
    public const int ItemsPerBackend = 5;

    /// <summary>PostgreSQL's default capacity: 64 + 5 × max_backends (dsm_max_segments = 0).</summary>
    public static int DefaultCapacity(int maxBackends) =>
        checked(FixedItems + ItemsPerBackend * maxBackends);

    public static long RecordSize => DsmAttachmentRecord.HeaderSize + (long)MaxAttachmentsPerSlot * DsmAttachmentEntry.Size;

    public static long ItemsOffset => DsmControlHeader.Size;

    public static long RecordsOffset(int capacity) => ItemsOffset + (long)capacity * DsmControlItem.Size;

    /// <summary>Bytes of the control area (not counting the OS header) for these limits.</summary>
    public static long RequiredSize(int capacity, int slotCount)
    {
        if (capacity < 1 || capacity > MaxCapacity)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity,
                $"the number of dynamic shared memory segments must be 1..{MaxCapacity}");
        if (slotCount < 1)
            throw new ArgumentOutOfRangeException(nameof(slotCount), slotCount, "there must be at least one backend slot");
        return Layout.ShmemSize.Add(RecordsOffset(capacity), Layout.ShmemSize.Multiply(slotCount, RecordSize));
    }
}

/// <summary>Header of the control area. Immutable after creation except <see cref="ItemCount"/>,
/// <see cref="FreeHead"/>, <see cref="FreeTail"/> and <see cref="InUse"/> (protected by: the DsmControl
/// built-in LWLock).</summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct DsmControlHeader
{
    public const int Size = 128;
    public const uint ExpectedMagic = 0x4354_4D50; // "PMTC" little-endian
    public const uint CurrentLayoutVersion = 1;

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint LayoutVersion;
    [FieldOffset(8)] public long TotalSize;        // bytes of the control area, this header included
    [FieldOffset(16)] public int ItemCount;        // high-water mark: items [0, ItemCount) have been used; never shrinks
    [FieldOffset(20)] public int Capacity;         // items
    [FieldOffset(24)] public int IndexBits;        // DsmHandleCodec width, = IndexBitsFor(Capacity)
    [FieldOffset(28)] public int ItemSize;         // DsmControlItem.Size when written
    [FieldOffset(32)] public int SlotCount;        // attachment records (= backend slots)
    [FieldOffset(36)] public int AttachmentsPerSlot;
    [FieldOffset(40)] public long RecordSize;      // bytes per attachment record
    [FieldOffset(48)] public int FreeHead;         // first free item (FIFO list through DsmControlItem.NextFree), -1 = none
    [FieldOffset(52)] public int FreeTail;         // last free item, -1 = none
    [FieldOffset(56)] public ulong InstanceTag;    // DsmInstanceTag.Value
    [FieldOffset(64)] public uint ControlHandle;   // this segment's own handle
    [FieldOffset(68)] public int CreatorPid;       // the supervisor
    [FieldOffset(72)] public int InUse;            // items not Free (diagnostics)
}

/// <summary>
/// One segment's shared state (PostgreSQL's dsm_control_item, plus state, owner and generation).
/// Protected by: the DsmControl built-in LWLock, for every field and every transition.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct DsmControlItem
{
    public const int Size = 64;

    [FieldOffset(0)] public uint Handle;                  // current DsmHandle; 0 while Free
    [FieldOffset(4)] public uint RefCount;                // 0 = free, 1 = moribund (being destroyed), n ≥ 2 = live with n-1 references (a pin counts as one)
    [FieldOffset(8)] public long SegmentSize;             // the user's bytes (without the OS header)
    [FieldOffset(16)] public DsmItemState State;          // Free / Creating / Live / Destroying
    [FieldOffset(17)] public DsmImplementation Implementation;
    [FieldOffset(18)] public byte Pinned;                 // 1 = pinned (then one of the references is the pin)
    [FieldOffset(20)] public int NextFree;                // free-list link while Free, -1 = end
    [FieldOffset(24)] public int FirstPage;               // main region only: first page in the page allocator
    [FieldOffset(28)] public int PageCount;               // main region only
    [FieldOffset(32)] public int OwnerSlot;               // Creating: creator; Destroying: destroyer; DsmControl.SupervisorSlot for the supervisor
    [FieldOffset(36)] public int OwnerPid;                // pid of that owner (0 = none)
    [FieldOffset(40)] public int SysVId;                  // shmid of a SysV segment once created, else -1
    [FieldOffset(44)] public uint Generation;             // generation of the current (or next) handle; 1..MaxGeneration
    [FieldOffset(48)] public int PinnerSlot;              // slot that pinned it; -1 when unknown (not pinned, or the pinner died)
    [FieldOffset(52)] public int PinnerPid;               // pid that pinned it (kept after its death, for inspection)
    [FieldOffset(56)] public int CreatorPid;              // for inspection
}

/// <summary>Header of one backend slot's attachment record, followed by
/// <see cref="DsmControlLayout.MaxAttachmentsPerSlot"/> entries. Protected by: the DsmControl LWLock (any process
/// holding it may edit any record: unpin clears a flag in the pinner's record).</summary>
[StructLayout(LayoutKind.Explicit, Size = HeaderSize)]
internal struct DsmAttachmentRecord
{
    public const int HeaderSize = 64;

    [FieldOffset(0)] public int Pid;     // process that last used this slot's record; 0 = none
    [FieldOffset(4)] public int Count;   // valid entries: 0..MaxAttachmentsPerSlot
}

/// <summary>One entry: a segment this slot has attached and/or pinned. Unordered; removal moves the last entry
/// into the hole.</summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct DsmAttachmentEntry
{
    public const int Size = 8;
    public const uint Attached = 1;
    public const uint Pinned = 2;

    [FieldOffset(0)] public uint Handle;
    [FieldOffset(4)] public uint Flags;  // Attached | Pinned
}
