using System.Runtime.InteropServices;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Text;

namespace Postmaster.Shmem.Registry;

/// <summary>
/// The DSM registry's shared table: the "DSM registry" structure of the main segment, a fixed number of
/// <see cref="DsmRegistryEntry"/> rows (name → state, segment handle, size, owner pid). PostgreSQL keeps its registry
/// in a dshash table inside DSA (itself pinned DSM); here it is a plain array in the main segment, so a full restart
/// (new main segment) empties it exactly as PostgreSQL's crash restart does, and nothing else ever does.
/// <para><b>Lifecycle.</b> The postmaster sizes it (<see cref="RequiredSize"/>, declared in
/// <see cref="Instance.InstanceLayout"/>) and lays it out with <see cref="Initialize"/> before any child exists;
/// every process finds it through <see cref="Instance.InstanceShmem.DsmRegistryTable"/>, which validates it with
/// <see cref="Attach"/>. Backends change it only through <see cref="DsmRegistry"/>; tools read it with
/// <see cref="List"/>, which takes no lock.</para>
/// <para><b>Locking.</b> Every write happens with the DsmRegistry built-in LWLock held exclusively, for a few memory
/// operations (never a system call, never the user's initialiser); lookups may hold it shared. Writers also bump the
/// entry's <see cref="DsmRegistryEntry.Version"/> around their change, so <see cref="List"/> can read consistent rows
/// without the lock.</para>
/// </summary>
internal sealed unsafe class DsmRegistryTable
{
    /// <summary>Names the registry holds unless the instance says otherwise (PostgreSQL's is unbounded: a dshash).</summary>
    public const int DefaultCapacity = 128;

    /// <summary>Largest capacity accepted.</summary>
    public const int MaxCapacity = 16384;

    /// <summary>Longest name in UTF-8 bytes (PostgreSQL's NAMEDATALEN - 1: the key is a NUL-terminated char[64]).</summary>
    public const int MaxNameBytes = DsmRegistryEntry.NameCapacity - 1;

    /// <summary>Attempts at a consistent lock-free read of one row before <see cref="List"/> reports it as it is.</summary>
    private const int MaxReadAttempts = 100;

    private readonly ShmemRegion _region;

    private DsmRegistryTable(ShmemRegion region)
    {
        _region = region;
        Capacity = Header.Capacity;
    }

    /// <summary>Names the table can hold at once.</summary>
    public int Capacity { get; }

    /// <summary>Names in use now (any state but Free); a racy read.</summary>
    public int Count => Volatile.Read(ref Header.Count);

    internal ref DsmRegistryHeader Header => ref _region.Ref<DsmRegistryHeader>(0);

    /// <summary>Bytes needed for <paramref name="capacity"/> names.</summary>
    public static long RequiredSize(int capacity)
    {
        if (capacity < 1 || capacity > MaxCapacity)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"the DSM registry capacity must be 1..{MaxCapacity}");
        return DsmRegistryHeader.Size + (long)capacity * DsmRegistryEntry.Size;
    }

    /// <summary>Creator side: writes an empty table. Postmaster only, before any child exists.</summary>
    public static DsmRegistryTable Initialize(ShmemRegion region, int capacity)
    {
        long size = RequiredSize(capacity);
        if (region.IsNull || region.Size < size)
            throw new ArgumentException($"the DSM registry needs {size} bytes, the region has {region.Size}", nameof(region));
        region.Span(0, checked((int)size)).Clear();
        ref var h = ref region.Ref<DsmRegistryHeader>(0);
        h.LayoutVersion = DsmRegistryHeader.CurrentLayoutVersion;
        h.TotalSize = size;
        h.Capacity = capacity;
        h.EntrySize = DsmRegistryEntry.Size;
        for (int i = 0; i < capacity; i++)
            region.Ref<DsmRegistryEntry>(EntryOffset(i)).OwnerSlot = -1;
        Volatile.Write(ref h.Magic, DsmRegistryHeader.ExpectedMagic); // last: the table is valid from here
        return new DsmRegistryTable(region);
    }

    /// <summary>Attaches a table the postmaster initialised; <see cref="ShmemCorruptException"/> when it fails
    /// validation (magic, version, entry size, capacity and counts that fit the region).</summary>
    public static DsmRegistryTable Attach(ShmemRegion region)
    {
        string? problem = ValidateHeader(region);
        if (problem is not null)
            throw new ShmemCorruptException("DSM registry is corrupt", problem);
        return new DsmRegistryTable(region);
    }

    public static bool IsSane(ShmemRegion region) => ValidateHeader(region) is null;

    /// <summary>Name used in validation results.</summary>
    public const string StructureName = "DSM registry";

    /// <summary>The header checked again (magic, version, entry size, capacity as at attach, counts) and the state of
    /// every entry used so far. Never throws. Null when valid, else the first problem.</summary>
    public string? Validate()
    {
        if (ShmemProblem.Named(StructureName, ValidateHeader(_region)) is { } problem)
            return problem;
        if (Header.Capacity != Capacity)
            return $"{StructureName}: capacity {Header.Capacity} differs from {Capacity}, the capacity at attach";
        int highWater = Volatile.Read(ref Header.HighWater);
        for (int i = 0; i < highWater; i++)
        {
            var state = _region.Ref<DsmRegistryEntry>(EntryOffset(i)).State;
            if (state is < DsmRegistryEntryState.Free or > DsmRegistryEntryState.Releasing)
                return $"{StructureName}: entry {i} has state {(int)state}, which is not an entry state";
        }
        return null;
    }

    private static string? ValidateHeader(ShmemRegion region)
    {
        if (region.IsNull || region.Size < DsmRegistryHeader.Size)
            return $"Region of {region.Size} bytes is too short to hold the header.";
        ref var h = ref region.Ref<DsmRegistryHeader>(0);
        if (Volatile.Read(ref h.Magic) != DsmRegistryHeader.ExpectedMagic)
            return $"Magic number 0x{h.Magic:X8} does not match 0x{DsmRegistryHeader.ExpectedMagic:X8}.";
        if (h.LayoutVersion != DsmRegistryHeader.CurrentLayoutVersion)
            return $"Layout version {h.LayoutVersion} is not {DsmRegistryHeader.CurrentLayoutVersion}.";
        if (h.EntrySize != DsmRegistryEntry.Size)
            return $"Entry size {h.EntrySize} does not match {DsmRegistryEntry.Size}.";
        if (h.Capacity < 1 || h.Capacity > MaxCapacity)
            return $"Capacity {h.Capacity} is out of range.";
        long size = RequiredSize(h.Capacity);
        if (h.TotalSize != size || size > region.Size)
            return $"Size {h.TotalSize} does not match {size} for capacity {h.Capacity}, or exceeds the region of {region.Size} bytes.";
        // Count first, then the high-water mark, which only grows and is raised before Count: count <= highWater
        // holds at every instant, so it holds for these two reads too (read without the lock).
        int count = Volatile.Read(ref h.Count);
        int highWater = Volatile.Read(ref h.HighWater);
        if (highWater < 0 || highWater > h.Capacity || count < 0 || count > highWater)
            return $"High-water mark {highWater} or count {count} is outside 0..{h.Capacity}.";
        return null;
    }

    /// <summary>
    /// Every name in use, in table order: a snapshot read without the lock, so an inspector never blocks on a stuck
    /// process. Each row is read under its sequence lock (consistent unless a writer died mid-change, in which case
    /// the row is reported as found after <see cref="MaxReadAttempts"/> tries).
    /// </summary>
    public IReadOnlyList<DsmRegistryEntryInfo> List()
    {
        var rows = new List<DsmRegistryEntryInfo>();
        int highWater = Math.Clamp(Volatile.Read(ref Header.HighWater), 0, Capacity);
        for (int i = 0; i < highWater; i++)
        {
            var e = ReadConsistent(i);
            if (e.State == DsmRegistryEntryState.Free)
                continue;
            rows.Add(new DsmRegistryEntryInfo(DecodeName(in e), e.State, new DsmHandle(e.Handle), e.SegmentSize,
                e.OwnerPid, e.InitialisedByPid, e.Attempts, e.Changed.Waiters,
                DateTimeOffset.FromUnixTimeMilliseconds(e.ChangedAtUnixMs), e.Type,
                e.State == DsmRegistryEntryState.Ready ? Math.Max(e.TotalSize, e.SegmentSize) : 0));
        }
        return rows;
    }

    /// <summary>Validates <paramref name="name"/> and writes its UTF-8 bytes to <paramref name="key"/> (at least
    /// <see cref="DsmRegistryEntry.NameCapacity"/> bytes); returns the length. PostgreSQL's messages.</summary>
    internal static int EncodeName(string name, Span<byte> key)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0)
            throw new ShmemException("DSM segment name cannot be empty");
        if (name.Contains('\0'))
            throw new ShmemException("DSM segment name cannot contain a NUL character", $"Name \"{name.Replace("\0", "\\0")}\".");
        int length = Utf8Text.GetByteCount(name);
        if (length > MaxNameBytes)
            throw new ShmemException("DSM segment name too long",
                $"Name \"{name}\" is {length} bytes in UTF-8; the limit is {MaxNameBytes} bytes.");
        return Utf8Text.GetBytes(name, key);
    }

    /// <summary>FNV-1a over the name's bytes.</summary>
    internal static uint Hash(ReadOnlySpan<byte> key)
    {
        uint h = 2166136261;
        foreach (byte b in key)
            h = (h ^ b) * 16777619;
        return h;
    }

    internal ref DsmRegistryEntry Entry(int index) => ref _region.Ref<DsmRegistryEntry>(EntryOffset(index));

    /// <summary>The index of the entry named <paramref name="key"/> (any state but Free), or -1. Lock held (either
    /// mode).</summary>
    internal int Find(ReadOnlySpan<byte> key, uint hash)
    {
        int highWater = Header.HighWater;
        if ((uint)highWater > (uint)Capacity)
            throw Corrupt($"high-water mark {highWater} exceeds capacity {Capacity}");
        for (int i = 0; i < highWater; i++)
        {
            ref var e = ref Entry(i);
            if (e.NameHash == hash && e.State != DsmRegistryEntryState.Free && NameEquals(ref e, key))
                return i;
        }
        return -1;
    }

    /// <summary>Takes a Free entry (the lowest, else one past the high-water mark) for <paramref name="key"/>, with its
    /// name written and its state still Free: the caller sets the state inside the same write. -1 when the table is
    /// full. Lock held exclusively.</summary>
    internal int Allocate(ReadOnlySpan<byte> key, uint hash)
    {
        ref var h = ref Header;
        int index = -1;
        for (int i = 0; i < h.HighWater; i++)
        {
            if (Entry(i).State == DsmRegistryEntryState.Free)
            {
                index = i;
                break;
            }
        }
        if (index < 0)
        {
            if (h.HighWater >= Capacity)
                return -1;
            index = h.HighWater;
        }
        ref var e = ref Entry(index);
        BeginWrite(ref e);
        fixed (byte* p = e.Name)
        {
            var name = new Span<byte>(p, DsmRegistryEntry.NameCapacity);
            name.Clear();
            key.CopyTo(name);
        }
        e.NameHash = hash;
        e.Attempts = 0;
        EndWrite(ref e);
        if (index == h.HighWater)
            Volatile.Write(ref h.HighWater, index + 1); // after the row: a lock-free reader sees it Free or complete
        return index;
    }

    /// <summary>Opens a change of entry <paramref name="e"/>: the version becomes odd (full fence). Lock held
    /// exclusively.</summary>
    internal static void BeginWrite(ref DsmRegistryEntry e) => Interlocked.Increment(ref e.Version);

    /// <summary>Closes a change: the version becomes even again (full fence).</summary>
    internal static void EndWrite(ref DsmRegistryEntry e) => Interlocked.Increment(ref e.Version);

    /// <summary>Sets the state and its time stamp, keeping <see cref="DsmRegistryHeader.Count"/> in step. Inside a
    /// write (between <see cref="BeginWrite"/> and <see cref="EndWrite"/>).</summary>
    internal void SetState(ref DsmRegistryEntry e, DsmRegistryEntryState state)
    {
        bool wasFree = e.State == DsmRegistryEntryState.Free;
        bool isFree = state == DsmRegistryEntryState.Free;
        e.State = state;
        e.ChangedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        if (wasFree != isFree)
            Volatile.Write(ref Header.Count, Header.Count + (isFree ? -1 : 1));
    }

    internal static string DecodeName(in DsmRegistryEntry e)
    {
        fixed (byte* p = e.Name)
        {
            var bytes = new ReadOnlySpan<byte>(p, DsmRegistryEntry.NameCapacity);
            int length = bytes.IndexOf((byte)0);
            return Utf8Text.GetString(length < 0 ? bytes[..MaxNameBytes] : bytes[..length]);
        }
    }

    internal static ShmemCorruptException Corrupt(string detail) => new("DSM registry is corrupt", detail);

    private static long EntryOffset(int index) => DsmRegistryHeader.Size + (long)index * DsmRegistryEntry.Size;

    private static bool NameEquals(ref DsmRegistryEntry e, ReadOnlySpan<byte> key)
    {
        fixed (byte* p = e.Name)
        {
            var stored = new ReadOnlySpan<byte>(p, DsmRegistryEntry.NameCapacity);
            return stored[..key.Length].SequenceEqual(key) && stored[key.Length] == 0;
        }
    }

    /// <summary>A copy of entry <paramref name="index"/> taken between two equal, even versions (sequence lock).</summary>
    private DsmRegistryEntry ReadConsistent(int index)
    {
        ref var e = ref Entry(index);
        DsmRegistryEntry copy = default;
        for (int attempt = 0; attempt < MaxReadAttempts; attempt++)
        {
            int before = Volatile.Read(ref e.Version);
            if ((before & 1) != 0)
            {
                Locks.CpuPause.Spin(1 << Math.Min(attempt, 10));
                continue;
            }
            copy = e;
            Interlocked.MemoryBarrier(); // the copy's loads complete before the version is read again
            if (Volatile.Read(ref e.Version) == before)
                return copy;
        }
        return e; // a writer died mid-change (or is very slow): report the row as it is
    }
}
