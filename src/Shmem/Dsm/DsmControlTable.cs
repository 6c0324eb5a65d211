using System.Runtime.CompilerServices;
using Postmaster.Shmem.Errors;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// Typed access to a mapped control area (<see cref="DsmControlLayout"/>) plus the table operations every
/// participant shares: item allocation from the free list, freeing with a generation bump, O(1) handle lookup, and
/// attachment-record entries. Holds no lock itself: every mutating method requires the caller to hold the
/// DsmControl LWLock (backends) or to know that no other process is alive (supervisor at startup and shutdown).
/// Indexes read from shared memory are bounds-checked before use.
/// </summary>
internal sealed unsafe class DsmControlTable
{
    private readonly byte* _area;

    private DsmControlTable(byte* area)
    {
        _area = area;
        ref var h = ref Header;
        Capacity = h.Capacity;
        SlotCount = h.SlotCount;
        Codec = new DsmHandleCodec(h.IndexBits);
        RecordsOffset = DsmControlLayout.RecordsOffset(Capacity);
    }

    public int Capacity { get; }

    public int SlotCount { get; }

    public DsmHandleCodec Codec { get; }

    private long RecordsOffset { get; }

    public ref DsmControlHeader Header => ref *(DsmControlHeader*)_area;

    /// <summary>Writes an empty table (creator only, before anyone else can map it).</summary>
    public static DsmControlTable Initialize(byte* area, long size, int capacity, int slotCount, DsmInstanceTag tag, uint handle)
    {
        long needed = DsmControlLayout.RequiredSize(capacity, slotCount);
        if (size < needed)
            throw new ArgumentException($"the control area needs {needed} bytes, {size} are mapped", nameof(size));
        new Span<byte>(area, DsmControlHeader.Size).Clear();
        ref var h = ref *(DsmControlHeader*)area;
        h.LayoutVersion = DsmControlHeader.CurrentLayoutVersion;
        h.TotalSize = needed;
        h.Capacity = capacity;
        h.IndexBits = DsmHandleCodec.IndexBitsFor(capacity);
        h.ItemSize = DsmControlItem.Size;
        h.SlotCount = slotCount;
        h.AttachmentsPerSlot = DsmControlLayout.MaxAttachmentsPerSlot;
        h.RecordSize = DsmControlLayout.RecordSize;
        h.FreeHead = -1;
        h.FreeTail = -1;
        h.InstanceTag = tag.Value;
        h.ControlHandle = handle;
        h.CreatorPid = Os.ProcessControl.CurrentPid;
        var table = new DsmControlTable(area);
        // Items are initialised lazily as ItemCount grows (PopFree); records start empty. A new POSIX, mmap or SysV
        // object is zero-filled by the OS, so only the header needs writing.
        Volatile.Write(ref h.Magic, DsmControlHeader.ExpectedMagic); // last: the table is valid from here
        return table;
    }

    /// <summary>Validates a control area someone else wrote; <see cref="ShmemCorruptException"/> when it fails.</summary>
    public static DsmControlTable Attach(byte* area, long mappedSize, DsmInstanceTag? tag)
    {
        string? problem = Validate(area, mappedSize, tag);
        if (problem is not null)
            throw new ShmemCorruptException("dynamic shared memory control segment is not valid", problem);
        return new DsmControlTable(area);
    }

    /// <summary>
    /// PostgreSQL's dsm_control_segment_sane (mapped size holds the header; magic; the items fit the mapping; item
    /// count ≤ capacity) plus the layout version and record geometry, the handle width, the free-list ends and,
    /// when given, the instance tag. Null when sane, else what is wrong.
    /// </summary>
    public static string? Validate(byte* area, long mappedSize, DsmInstanceTag? tag)
    {
        if (mappedSize < DsmControlHeader.Size)
            return $"Mapped size {mappedSize} is too short to hold the header.";
        ref var h = ref *(DsmControlHeader*)area;
        if (Volatile.Read(ref h.Magic) != DsmControlHeader.ExpectedMagic)
            return $"Magic number 0x{h.Magic:X8} does not match 0x{DsmControlHeader.ExpectedMagic:X8}.";
        if (h.LayoutVersion != DsmControlHeader.CurrentLayoutVersion)
            return $"Layout version {h.LayoutVersion} is not {DsmControlHeader.CurrentLayoutVersion}.";
        if (h.ItemSize != DsmControlItem.Size || h.AttachmentsPerSlot != DsmControlLayout.MaxAttachmentsPerSlot ||
            h.RecordSize != DsmControlLayout.RecordSize)
            return $"Item size {h.ItemSize}, {h.AttachmentsPerSlot} attachments per slot and record size {h.RecordSize} " +
                   $"do not match {DsmControlItem.Size}, {DsmControlLayout.MaxAttachmentsPerSlot} and {DsmControlLayout.RecordSize}.";
        if (h.Capacity < 1 || h.Capacity > DsmControlLayout.MaxCapacity || h.SlotCount < 1 || h.SlotCount > 1 << 20)
            return $"Capacity {h.Capacity} or slot count {h.SlotCount} is out of range.";
        long needed = DsmControlLayout.RequiredSize(h.Capacity, h.SlotCount);
        if (h.TotalSize != needed || needed > mappedSize)
            return $"Size {h.TotalSize} does not match {needed} for {h.Capacity} items and {h.SlotCount} slots, " +
                   $"or exceeds the mapping of {mappedSize} bytes.";
        // Read without the lock while backends change these: only single-field ranges are checked, and the free list
        // ends are read before the item count, which only grows (a pair of ends or an end and the count may be caught
        // between two stores of one update, so no cross-field pairing is checked here).
        int head = Volatile.Read(ref h.FreeHead);
        int tail = Volatile.Read(ref h.FreeTail);
        int count = Volatile.Read(ref h.ItemCount);
        if (count < 0 || count > h.Capacity)
            return $"Item count {count} is outside 0..{h.Capacity}.";
        if (h.IndexBits != DsmHandleCodec.IndexBitsFor(h.Capacity))
            return $"Handle index width {h.IndexBits} does not match capacity {h.Capacity}.";
        if (head < -1 || head >= count || tail < -1 || tail >= count)
            return $"Free list ends {head}, {tail} are not valid for {count} items.";
        if (tag is { } t && h.InstanceTag != t.Value)
            return $"Instance tag {h.InstanceTag:x16} is not {t}.";
        return null;
    }

    public ref DsmControlItem Item(int index)
    {
        if ((uint)index >= (uint)Capacity)
            throw new ShmemCorruptException($"dynamic shared memory item index {index} is outside 0..{Capacity - 1}");
        return ref *(DsmControlItem*)(_area + DsmControlLayout.ItemsOffset + (long)index * DsmControlItem.Size);
    }

    public ref DsmAttachmentRecord Record(int slot)
    {
        if ((uint)slot >= (uint)SlotCount)
            throw new ArgumentOutOfRangeException(nameof(slot), slot, $"dynamic shared memory attachment slots are 0..{SlotCount - 1}");
        return ref *(DsmAttachmentRecord*)(_area + RecordsOffset + slot * DsmControlLayout.RecordSize);
    }

    /// <summary>Entry <paramref name="index"/> of <paramref name="slot"/>'s record ([0, Count) are valid). A ref, not a
    /// Span: Span&lt;T&gt; over a struct of this assembly is not precompiled by ReadyToRun.</summary>
    public ref DsmAttachmentEntry Entry(int slot, int index)
    {
        if ((uint)index >= DsmControlLayout.MaxAttachmentsPerSlot)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"attachment entries are 0..{DsmControlLayout.MaxAttachmentsPerSlot - 1}");
        return ref EntriesOf(slot)[index];
    }

    /// <summary>The first entry of <paramref name="slot"/>'s record; callers index it below <see cref="EntryCount"/>
    /// (validated), so within the record.</summary>
    private DsmAttachmentEntry* EntriesOf(int slot) =>
        (DsmAttachmentEntry*)((byte*)Unsafe.AsPointer(ref Record(slot)) + DsmAttachmentRecord.HeaderSize);

    /// <summary>The record's entry count, validated (a dead writer may have left anything).</summary>
    public int EntryCount(int slot)
    {
        int n = Volatile.Read(ref Record(slot).Count);
        if ((uint)n > DsmControlLayout.MaxAttachmentsPerSlot)
            throw new ShmemCorruptException($"dynamic shared memory attachment record of slot {slot} is corrupt",
                $"Entry count {n} is outside 0..{DsmControlLayout.MaxAttachmentsPerSlot}.");
        return n;
    }

    /// <summary>The index of the Live, referenced item with exactly this handle, or -1 (O(1): the index is in the
    /// handle; a stale generation, a moribund or unpublished item all miss). Lock held.</summary>
    public int FindLive(uint handle)
    {
        if (handle == 0)
            return -1;
        int index = Codec.IndexOf(handle);
        if (index >= Header.ItemCount)
            return -1;
        ref var item = ref Item(index);
        return item.Handle == handle && item.State == DsmItemState.Live && item.RefCount > 1 ? index : -1;
    }

    /// <summary>Takes an item off the free list (oldest freed first, which spreads generations), or extends the
    /// high-water mark; -1 when every item is in use. The item comes back Free with its generation set. Lock held.</summary>
    public int PopFree()
    {
        ref var h = ref Header;
        int index = h.FreeHead;
        if (index >= 0)
        {
            if (index >= h.ItemCount)
                throw new ShmemCorruptException($"dynamic shared memory free list points at item {index} beyond item count {h.ItemCount}");
            ref var item = ref Item(index);
            if (item.State != DsmItemState.Free)
                throw new ShmemCorruptException($"dynamic shared memory free list holds item {index}, which is {item.State}");
            h.FreeHead = item.NextFree;
            if (h.FreeHead < 0)
                h.FreeTail = -1;
            item.NextFree = -1;
            h.InUse++;
            return index;
        }
        if (h.ItemCount >= Capacity)
            return -1;
        index = h.ItemCount;
        ref var fresh = ref Item(index);
        fresh = default;
        fresh.Generation = 1;
        fresh.NextFree = -1;
        fresh.SysVId = -1;
        fresh.PinnerSlot = -1;
        fresh.OwnerSlot = -1;
        h.ItemCount = index + 1;
        h.InUse++;
        return index;
    }

    /// <summary>Gives item <paramref name="index"/> back: Free, reference count 0, next generation, appended to the
    /// free list. Lock held.</summary>
    public void Free(int index)
    {
        ref var h = ref Header;
        ref var item = ref Item(index);
        uint generation = Codec.NextGeneration(item.Generation);
        item = default;
        item.Generation = generation;
        item.NextFree = -1;
        item.SysVId = -1;
        item.PinnerSlot = -1;
        item.OwnerSlot = -1;
        if (h.FreeTail >= 0)
            Item(h.FreeTail).NextFree = index;
        else
            h.FreeHead = index;
        h.FreeTail = index;
        h.InUse--;
    }

    /// <summary>The handle item <paramref name="index"/> gets for its current generation.</summary>
    public uint HandleFor(int index, bool mainRegion) => Codec.Encode(index, Item(index).Generation, mainRegion);

    /// <summary>Adds <paramref name="flags"/> for <paramref name="handle"/> to <paramref name="slot"/>'s record (a new
    /// entry, or more flags on an existing one). False when the record is full. Lock held.</summary>
    public bool AddEntry(int slot, int pid, uint handle, uint flags)
    {
        ref var record = ref Record(slot);
        var entries = EntriesOf(slot);
        int count = EntryCount(slot);
        record.Pid = pid;
        for (int i = 0; i < count; i++)
        {
            if (entries[i].Handle == handle)
            {
                entries[i].Flags |= flags;
                return true;
            }
        }
        if (count >= DsmControlLayout.MaxAttachmentsPerSlot)
            return false;
        entries[count] = new DsmAttachmentEntry { Handle = handle, Flags = flags };
        record.Count = count + 1;
        return true;
    }

    /// <summary>True when <paramref name="slot"/>'s record has room for one more entry. Lock held.</summary>
    public bool HasRoom(int slot) => EntryCount(slot) < DsmControlLayout.MaxAttachmentsPerSlot;

    /// <summary>Clears <paramref name="flags"/> on <paramref name="slot"/>'s entry for <paramref name="handle"/>, removing
    /// the entry when no flag is left; false when there is no such entry. Lock held.</summary>
    public bool ClearEntry(int slot, uint handle, uint flags)
    {
        ref var record = ref Record(slot);
        var entries = EntriesOf(slot);
        int count = EntryCount(slot);
        for (int i = 0; i < count; i++)
        {
            if (entries[i].Handle != handle)
                continue;
            entries[i].Flags &= ~flags;
            if (entries[i].Flags == 0)
            {
                entries[i] = entries[count - 1];
                record.Count = count - 1;
            }
            return true;
        }
        return false;
    }

    /// <summary>
    /// Drops <paramref name="slot"/>'s entries that only record a pin (the process detached but its pin stays: a pin
    /// belongs to the segment, not to the process), marking those items' pinner unknown. Returns the number of
    /// entries left, all with the Attached flag. Lock held (or no other process alive).
    /// </summary>
    public int ForgetPins(int slot)
    {
        ref var record = ref Record(slot);
        var entries = EntriesOf(slot);
        int count = EntryCount(slot);
        for (int i = count - 1; i >= 0; i--)
        {
            if ((entries[i].Flags & DsmAttachmentEntry.Attached) != 0)
                continue;
            uint handle = entries[i].Handle;
            int index = Codec.IndexOf(handle);
            if (handle != 0 && index < Header.ItemCount)
            {
                ref var item = ref Item(index);
                if (item.Handle == handle && item.PinnerSlot == slot)
                    item.PinnerSlot = -1;
            }
            entries[i] = entries[count - 1];
            count--;
        }
        record.Count = count;
        return count;
    }

    /// <summary>Renames <paramref name="slot"/>'s entry from <paramref name="oldHandle"/> to <paramref name="newHandle"/>
    /// (creation retried with a new generation after a name collision). Lock held.</summary>
    public void RenameEntry(int slot, uint oldHandle, uint newHandle)
    {
        var entries = EntriesOf(slot);
        int count = EntryCount(slot);
        for (int i = 0; i < count; i++)
        {
            if (entries[i].Handle == oldHandle)
            {
                entries[i].Handle = newHandle;
                return;
            }
        }
    }
}
