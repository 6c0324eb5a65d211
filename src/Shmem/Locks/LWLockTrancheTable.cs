using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Text;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// The shared table of lock tranche names, and home of the built-in locks (<see cref="BuiltinLWLock"/>), in the main
/// segment. A tranche is a named family of locks (PostgreSQL's LWLock tranches): every lock stores its tranche id, and
/// this table turns the id into the name shown in logs, errors and <c>postmaster shmem</c>. Built-in locks are their
/// own tranches (ids 0..<see cref="BuiltinCount"/>-1); modules and workers register more names at run time and place
/// their locks in the main segment or in a DSM segment (<see cref="LWLockSegment.InitializeLock"/>).
/// <para>Lifecycle: the postmaster sizes it (<see cref="RequiredSize"/>), places it at a cache-line-aligned offset of
/// the main segment and calls <see cref="Initialize"/> before any child exists; every process calls
/// <see cref="Attach"/>, which validates it. Names are never removed (until the segment is recreated).</para>
/// <para>Layout: 64-byte <see cref="LWLockTrancheTableHeader"/>; <see cref="BuiltinCount"/> locks of 64 bytes;
/// Capacity names of <see cref="NameSlotSize"/> bytes (UTF-8, NUL-terminated, at most <see cref="MaxNameBytes"/>).
/// Protected by: the built-in <see cref="BuiltinLWLock.TrancheTable"/> lock for appends; readers need no lock because
/// a name is written completely before Count is raised to include it, and never changes afterwards.</para>
/// </summary>
internal sealed unsafe class LWLockTrancheTable
{
    /// <summary>Longest tranche name, in UTF-8 bytes (PostgreSQL's NAMEDATALEN - 1).</summary>
    public const int MaxNameBytes = 63;

    /// <summary>Bytes per stored name, including the terminating NUL.</summary>
    public const int NameSlotSize = MaxNameBytes + 1;

    /// <summary>Most tranches: ids must fit owner records' 16 bits.</summary>
    public const int MaxCapacity = LWLockSegment.MaxTrancheId + 1;

    public static readonly int BuiltinCount = (int)BuiltinLWLock.TrancheTable + 1; // ids are 0..TrancheTable, pinned by a test

    private readonly ShmemRegion _region;
    private readonly LWLockSegment _segment;
    private readonly long _segmentOffset; // of the table, from the segment base

    private LWLockTrancheTable(ShmemRegion region, LWLockSegment segment)
    {
        _region = region;
        _segment = segment;
        _segmentOffset = segment.OffsetOf(region);
        Capacity = Header.Capacity;
    }

    /// <summary>Most names, built-in ones included.</summary>
    public int Capacity { get; }

    /// <summary>Names registered so far, built-in ones included.</summary>
    public int Count => Volatile.Read(ref Header.Count);

    private ref LWLockTrancheTableHeader Header => ref _region.Ref<LWLockTrancheTableHeader>(0);

    private static long LocksOffset => LWLockTrancheTableHeader.Size;

    private static long NamesOffset => LocksOffset + LWLockSegment.RequiredSize(BuiltinCount);

    /// <summary>Bytes needed for <paramref name="capacity"/> names (built-in ones included).</summary>
    public static long RequiredSize(int capacity)
    {
        if (capacity < BuiltinCount || capacity > MaxCapacity)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity,
                $"the tranche table capacity must be {BuiltinCount}..{MaxCapacity}");
        return NamesOffset + (long)capacity * NameSlotSize;
    }

    /// <summary>Creator side: initialises the built-in locks and names. <paramref name="region"/> must be a
    /// cache-line-aligned slice of <paramref name="segment"/> (the main segment). Postmaster only, before children.</summary>
    public static LWLockTrancheTable Initialize(ShmemRegion region, LWLockSegment segment, int capacity)
    {
        long size = RequiredSize(capacity);
        if (region.Size < size)
            throw new ArgumentException($"tranche table needs {size} bytes, the region has {region.Size}", nameof(region));
        ref var h = ref region.Ref<LWLockTrancheTableHeader>(0);
        h = default;
        h.LayoutVersion = LWLockTrancheTableHeader.CurrentLayoutVersion;
        h.TotalSize = size;
        h.Capacity = capacity;
        h.BuiltinCount = BuiltinCount;
        h.NameSlotSize = NameSlotSize;
        long tableOffset = segment.OffsetOf(region);
        for (var id = (BuiltinLWLock)0; (int)id < BuiltinCount; id++)
        {
            segment.InitializeLock(tableOffset + LocksOffset + (long)id * LWLock.Size, (int)id);
            WriteName(region, (int)id, id.ToString());
        }
        h.Count = BuiltinCount;
        Volatile.Write(ref h.Magic, LWLockTrancheTableHeader.ExpectedMagic); // last: valid from here
        return new LWLockTrancheTable(region, segment);
    }

    /// <summary>Attaches to a table the postmaster initialised; <see cref="ShmemCorruptException"/> when it fails
    /// validation.</summary>
    public static LWLockTrancheTable Attach(ShmemRegion region, LWLockSegment segment)
    {
        string? problem = ValidateHeader(region);
        if (problem is not null)
            throw new ShmemCorruptException("lock tranche table is corrupt", problem);
        var table = new LWLockTrancheTable(region, segment);
        for (var id = (BuiltinLWLock)0; (int)id < BuiltinCount; id++)
            table.Builtin(id); // validates each lock's magic
        return table;
    }

    public static bool IsSane(ShmemRegion region) => ValidateHeader(region) is null;

    /// <summary>Name used in validation results.</summary>
    public const string StructureName = "lock tranche table";

    /// <summary>
    /// Checks the table as the supervisor relies on it (it names locks through it and holds built-in locks in it):
    /// the header (magic, version, geometry, capacity as at attach, size, name count) and each built-in lock's magic
    /// and tranche id. Never throws. Null when valid, else the first problem.
    /// </summary>
    public string? Validate()
    {
        if (ShmemProblem.Named(StructureName, ValidateHeader(_region)) is { } problem)
            return problem;
        if (Header.Capacity != Capacity)
            return $"{StructureName}: capacity {Header.Capacity} differs from {Capacity}, the capacity at attach";
        for (int id = 0; id < BuiltinCount; id++)
        {
            ref var l = ref _region.Ref<LWLock>(LocksOffset + (long)id * LWLock.Size);
            uint magic = Volatile.Read(ref l.Magic);
            if (magic != LWLock.ExpectedMagic)
                return $"{StructureName}: built-in lock {(BuiltinLWLock)id} has a wrong magic number 0x{magic:X8} (expected 0x{LWLock.ExpectedMagic:X8})";
        }
        return null;
    }

    private static string? ValidateHeader(ShmemRegion region)
    {
        if (region.IsNull || region.Size < LWLockTrancheTableHeader.Size)
            return $"Region of {region.Size} bytes is too short to hold the header.";
        ref var h = ref region.Ref<LWLockTrancheTableHeader>(0);
        if (h.Magic != LWLockTrancheTableHeader.ExpectedMagic)
            return $"Magic number 0x{h.Magic:X8} does not match 0x{LWLockTrancheTableHeader.ExpectedMagic:X8}.";
        if (h.LayoutVersion != LWLockTrancheTableHeader.CurrentLayoutVersion)
            return $"Layout version {h.LayoutVersion} is not {LWLockTrancheTableHeader.CurrentLayoutVersion}.";
        if (h.BuiltinCount != BuiltinCount || h.NameSlotSize != NameSlotSize)
            return $"{h.BuiltinCount} built-in locks / {h.NameSlotSize}-byte names do not match {BuiltinCount} / {NameSlotSize}.";
        if (h.Capacity < BuiltinCount || h.Capacity > MaxCapacity)
            return $"Capacity {h.Capacity} is out of range.";
        long size = RequiredSize(h.Capacity);
        if (h.TotalSize != size || size > region.Size)
            return $"Size {h.TotalSize} does not match {size} for capacity {h.Capacity}, or exceeds the region of {region.Size} bytes.";
        int count = Volatile.Read(ref h.Count);
        if (count < BuiltinCount || count > h.Capacity)
            return $"Name count {count} is outside {BuiltinCount}..{h.Capacity}.";
        return null;
    }

    /// <summary>The built-in lock <paramref name="id"/>.</summary>
    public LWLockHandle Builtin(BuiltinLWLock id)
    {
        if ((int)id >= BuiltinCount)
            throw new ArgumentOutOfRangeException(nameof(id), id, "not a built-in lock");
        return _segment.Lock(_segmentOffset + LocksOffset + (long)id * LWLock.Size);
    }

    /// <summary>The name of tranche <paramref name="trancheId"/>, or null when no such tranche is registered.
    /// Lock-free; never blocks.</summary>
    public string? TrancheName(int trancheId)
    {
        if ((uint)trancheId >= (uint)Count)
            return null;
        var bytes = _region.Span(NamesOffset + (long)trancheId * NameSlotSize, NameSlotSize);
        int length = bytes.IndexOf((byte)0);
        return Utf8Text.GetString(length < 0 ? bytes : bytes[..length]);
    }

    /// <summary>The id of the tranche called <paramref name="name"/>, or null. Lock-free; never blocks.</summary>
    public int? Find(string name)
    {
        int length = CheckName(name);
        Span<byte> utf8 = stackalloc byte[NameSlotSize];
        Utf8Text.GetBytes(name, utf8);
        return Find(utf8[..length]);
    }

    /// <summary>Every (id, name) registered so far, in id order, for <c>postmaster shmem</c>.</summary>
    public IReadOnlyList<KeyValuePair<int, string>> Names()
    {
        int count = Count;
        var names = new List<KeyValuePair<int, string>>(count);
        for (int id = 0; id < count; id++)
            names.Add(new(id, TrancheName(id)!));
        return names;
    }

    /// <summary>
    /// The id of tranche <paramref name="name"/>, registering it if new; any process registering the same name gets
    /// the same id. Takes the <see cref="BuiltinLWLock.TrancheTable"/> lock exclusively through
    /// <paramref name="owner"/> (so not for the supervisor after startup). Throws <see cref="ArgumentException"/> for
    /// an empty name, a NUL in it, or more than <see cref="MaxNameBytes"/> UTF-8 bytes (never truncated), and
    /// <see cref="ShmemException"/> when the table is full.
    /// </summary>
    public int Register(LockOwner owner, string name)
    {
        int length = CheckName(name);
        Span<byte> utf8 = stackalloc byte[NameSlotSize];
        Utf8Text.GetBytes(name, utf8);
        if (Find(utf8[..length]) is int existing)
            return existing;

        var lwlock = Builtin(BuiltinLWLock.TrancheTable);
        owner.Acquire(lwlock, LWLockMode.Exclusive);
        try
        {
            if (Find(utf8[..length]) is int raced) // registered while we waited for the lock
                return raced;
            int id = Count;
            if (id >= Capacity)
                throw new ShmemException($"too many LWLock tranches: could not register \"{name}\"",
                    $"The tranche table holds at most {Capacity} names.",
                    "Increase the tranche table capacity.");
            WriteName(_region, id, name);
            Volatile.Write(ref Header.Count, id + 1); // publish: the name is complete
            return id;
        }
        finally
        {
            owner.Release(lwlock);
        }
    }

    private int? Find(ReadOnlySpan<byte> utf8)
    {
        int count = Count;
        for (int id = 0; id < count; id++)
        {
            var slot = _region.Span(NamesOffset + (long)id * NameSlotSize, NameSlotSize);
            if (slot[..utf8.Length].SequenceEqual(utf8) && slot[utf8.Length] == 0)
                return id;
        }
        return null;
    }

    /// <summary>Validates a tranche name and returns its UTF-8 length.</summary>
    private static int CheckName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0 || name.Contains('\0'))
            throw new ArgumentException("a tranche name must be non-empty and contain no NUL character", nameof(name));
        int length = Utf8Text.GetByteCount(name);
        if (length > MaxNameBytes)
            throw new ArgumentException(
                $"tranche name \"{name}\" is too long: {length} bytes, the limit is {MaxNameBytes} bytes", nameof(name));
        return length;
    }

    private static void WriteName(ShmemRegion region, int id, string name)
    {
        var slot = region.Span(NamesOffset + (long)id * NameSlotSize, NameSlotSize);
        slot.Clear();
        Utf8Text.GetBytes(name, slot);
    }
}

/// <summary>Header at offset 0 of an <see cref="LWLockTrancheTable"/>. ABI: any layout change bumps
/// <see cref="CurrentLayoutVersion"/>. Immutable after initialisation except <see cref="Count"/> (protected by: the
/// TrancheTable built-in lock; only grows).</summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct LWLockTrancheTableHeader
{
    public const int Size = 64;
    public const uint ExpectedMagic = 0x5254_4D50; // "PMTR" little-endian
    public const uint CurrentLayoutVersion = 1;

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint LayoutVersion;
    [FieldOffset(8)] public long TotalSize;      // bytes, including this header
    [FieldOffset(16)] public int Capacity;       // names, built-in ones included
    [FieldOffset(20)] public int Count;          // names published so far; BuiltinCount..Capacity
    [FieldOffset(24)] public int BuiltinCount;   // built-in locks that follow the header
    [FieldOffset(28)] public int NameSlotSize;   // bytes per name slot when written
}
