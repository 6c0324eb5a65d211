using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Text;

namespace Postmaster.Shmem.Layout;

/// <summary>One row of the index: what <c>postmaster shmem</c> prints (pg_shmem_allocations).</summary>
internal readonly record struct ShmemAllocation(string? Name, long? Offset, long Size, long AllocatedSize);

/// <summary>
/// The "Shmem Index" of the main segment: a fixed-capacity table name → (offset, size), plus the bump allocator
/// that hands out cache-line-aligned space after it. PostgreSQL's ShmemInitStruct: the first caller of a name
/// allocates it (found = false) and every later caller, in any process, gets the same space (found = true).
/// Nothing is ever freed. Protected by: <see cref="MainHeader.AllocLock"/>, a spin word taken for the few
/// instructions of a lookup or insert; a holder that stays longer than <see cref="LockTimeout"/> makes the caller
/// fail with an error naming the holder instead of hanging.
/// </summary>
internal sealed class ShmemIndex
{
    public const int MaxNameBytes = 63;

    /// <summary>Most entries an index may declare (a sanity bound for validation; plans use far fewer).</summary>
    public const int MaxCapacity = 1 << 20;
    public static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(5);
    private const uint IndexMagic = 0x504D_4958; // "PMIX"
    private const uint IndexLayoutVersion = 1;

    [StructLayout(LayoutKind.Explicit, Size = 64)]
    private struct IndexHeader
    {
        [FieldOffset(0)] public uint Magic;
        [FieldOffset(4)] public uint LayoutVersion;
        [FieldOffset(8)] public int Capacity;
        [FieldOffset(12)] public int Count;            // entries [0, Count) are in use; Protected by: AllocLock
        [FieldOffset(16)] public long Size;            // bytes of header + entries
    }

    [StructLayout(LayoutKind.Explicit, Size = 128)]
    private unsafe struct IndexEntry
    {
        [FieldOffset(0)] public fixed byte Name[64];    // UTF-8, NUL-terminated
        [FieldOffset(64)] public long Offset;           // from the segment base
        [FieldOffset(72)] public long Size;             // as requested
        [FieldOffset(80)] public long AllocatedSize;    // with alignment padding
    }

    private readonly ShmemRegion _segment;
    private readonly long _offset;

    private ShmemIndex(ShmemRegion segment, long offset)
    {
        _segment = segment;
        _offset = offset;
    }

    public static long RequiredSize(int capacity) =>
        ShmemSize.Add(Unsafe.SizeOf<IndexHeader>(), ShmemSize.Multiply(capacity, Unsafe.SizeOf<IndexEntry>()));

    public int Capacity => HeaderRef.Capacity;

    /// <summary>Where the index was found (from the segment base).</summary>
    public long Offset => _offset;

    private ref IndexHeader HeaderRef => ref _segment.Ref<IndexHeader>(_offset);

    private ref MainHeader Main => ref _segment.Ref<MainHeader>(0);

    /// <summary>Lays out an empty index at <paramref name="offset"/> (creator only, before any other process).</summary>
    internal static ShmemIndex Initialize(ShmemRegion segment, long offset, int capacity)
    {
        ref var h = ref segment.Ref<IndexHeader>(offset);
        h.Capacity = capacity;
        h.Count = 0;
        h.Size = RequiredSize(capacity);
        h.LayoutVersion = IndexLayoutVersion;
        h.Magic = IndexMagic;
        return new ShmemIndex(segment, offset);
    }

    /// <summary>Validates an index written by another process before trusting it; <see cref="ShmemCorruptException"/>
    /// naming the problem when it fails.</summary>
    internal static ShmemIndex Attach(ShmemRegion segment, long offset)
    {
        if (Validate(segment, offset) is { } problem)
            throw new ShmemCorruptException(problem);
        return new ShmemIndex(segment, offset);
    }

    /// <summary>Name used in validation results.</summary>
    public const string StructureName = "shared memory index";

    /// <summary>
    /// Checks the index at <paramref name="offset"/> of <paramref name="segment"/> (whose <see cref="MainHeader"/> must
    /// have passed <see cref="MainHeader.Validate"/>): magic, layout version, capacity, count ≤ capacity, size, and
    /// every published entry: a NUL-terminated name, an allocation inside [end of the index, free offset] with its
    /// size ≤ its aligned allocated size. Reads the header and Count entries; never throws. Null when valid.
    /// </summary>
    public static unsafe string? Validate(ShmemRegion segment, long offset)
    {
        if (segment.IsNull || segment.Size < MainHeader.Size)
            return $"{StructureName}: the segment is too small";
        if (offset < MainHeader.Size || offset > segment.Size - Unsafe.SizeOf<IndexHeader>())
            return $"{StructureName}: offset {offset} is outside the segment of {segment.Size} bytes";
        var h = segment.Ref<IndexHeader>(offset);
        if (ShmemProblem.Header(StructureName, segment.Size - offset, Unsafe.SizeOf<IndexHeader>(), h.Magic, IndexMagic,
                h.LayoutVersion, IndexLayoutVersion) is { } problem)
            return problem;
        if (h.Capacity < 0 || h.Capacity > MaxCapacity)
            return $"{StructureName}: capacity {h.Capacity} is outside 0..{MaxCapacity}";
        if (h.Size != RequiredSize(h.Capacity) || h.Size > segment.Size - offset)
            return $"{StructureName}: size {h.Size} does not match {RequiredSize(h.Capacity)} for {h.Capacity} entries " +
                   $"or does not fit the segment of {segment.Size} bytes";
        int count = Volatile.Read(ref segment.Ref<IndexHeader>(offset).Count);
        if (count < 0 || count > h.Capacity)
            return $"{StructureName}: entry count {count} is outside 0..{h.Capacity}";
        var main = segment.Ref<MainHeader>(0);
        long first = offset + h.Size;
        long free = Math.Min(main.FreeOffset, segment.Size);
        for (int i = 0; i < count; i++)
        {
            var e = segment.Ref<IndexEntry>(offset + Unsafe.SizeOf<IndexHeader>() + (long)i * Unsafe.SizeOf<IndexEntry>());
            var name = new ReadOnlySpan<byte>(e.Name, MaxNameBytes + 1);
            int len = name.IndexOf((byte)0);
            if (len <= 0)
                return $"{StructureName}: entry {i} has {(len == 0 ? "an empty name" : "a name that is not NUL-terminated")}";
            if (e.Offset < first || e.Size < 0 || e.AllocatedSize < e.Size || e.AllocatedSize != ShmemSize.CacheLineAlign(e.Size) ||
                e.Offset > free || e.AllocatedSize > free - e.Offset)
                return $"{StructureName}: entry {i} (\"{Utf8Text.GetString(name[..len])}\") at offset {e.Offset} with size {e.Size} " +
                       $"({e.AllocatedSize} allocated) is outside the allocated space {first}..{free}";
        }
        return null;
    }

    /// <summary>This index, checked again (see <see cref="Validate(ShmemRegion, long)"/>): the main header's
    /// validation comes first, then this.</summary>
    public string? Validate() => Validate(_segment, _offset);

    /// <summary>
    /// PostgreSQL's ShmemInitStruct: returns the space registered under <paramref name="name"/>, allocating
    /// <paramref name="size"/> bytes (cache-line aligned, zeroed) on first use. Errors: a name used with another
    /// size, no space left, index full, a bad name.
    /// </summary>
    public ShmemRegion InitStruct(string name, long size, out bool found)
    {
        var key = EncodeName(name);
        if (size < 0)
            throw new ArgumentOutOfRangeException(nameof(size), $"negative size {size} for data structure \"{name}\"");
        Lock();
        try
        {
            int i = FindLocked(key);
            if (i >= 0)
            {
                ref var e = ref EntryRef(i);
                if (e.Size != size)
                    throw new ShmemException(
                        $"ShmemIndex entry size is wrong for data structure \"{name}\": expected {size}, actual {e.Size}");
                found = true;
                return RegionOf(i);
            }
            ref var h = ref HeaderRef;
            if (CheckedCount() >= h.Capacity)
                throw new ShmemException($"could not create ShmemIndex entry for data structure \"{name}\"",
                    hint: $"The index holds at most {h.Capacity} named allocations.");
            long allocated = ShmemSize.CacheLineAlign(size);
            ref var main = ref Main;
            long start = main.FreeOffset;
            if (start < _offset || start > _segment.Size || main.TotalSize != _segment.Size)
                throw new ShmemCorruptException($"{MainHeader.StructureName}: free offset {start} or total size {main.TotalSize} is not valid");
            if (allocated > main.TotalSize - start)
                throw new ShmemException($"not enough shared memory for data structure \"{name}\" ({size} bytes requested)",
                    $"{main.TotalSize - start} bytes are left in the main segment.",
                    "Increase \"shared_memory_size\".");
            _segment.Span(start, 0); // bounds check before publishing
            ref var entry = ref EntryRef(h.Count);
            entry.Offset = start;
            entry.Size = size;
            entry.AllocatedSize = allocated;
            WriteName(ref entry, key);
            main.FreeOffset = start + allocated;
            Volatile.Write(ref h.Count, h.Count + 1); // publish the entry after its fields
            found = false;
            return _segment.Slice(start, size);
        }
        finally
        {
            Unlock();
        }
    }

    /// <summary>Looks a name up without allocating.</summary>
    public bool TryFind(string name, out ShmemRegion region)
    {
        var key = EncodeName(name);
        Lock();
        try
        {
            int i = FindLocked(key);
            if (i < 0)
            {
                region = default;
                return false;
            }
            region = RegionOf(i);
            return true;
        }
        finally
        {
            Unlock();
        }
    }

    /// <summary>All rows, pg_shmem_allocations style: named entries, then "&lt;anonymous&gt;" (space taken outside the
    /// index: header and the index itself), then the free space (Name null). Reads without the lock, counting only
    /// published entries, so an inspector never blocks on a stuck process.</summary>
    public unsafe IReadOnlyList<ShmemAllocation> List()
    {
        var rows = new List<ShmemAllocation>();
        int count = Volatile.Read(ref HeaderRef.Count);
        int capacity = (int)Math.Min(HeaderRef.Capacity, (_segment.Size - _offset - Unsafe.SizeOf<IndexHeader>()) / Unsafe.SizeOf<IndexEntry>());
        long named = 0;
        for (int i = 0; i < count && i < capacity; i++)
        {
            ref var e = ref EntryRef(i);
            string n;
            fixed (byte* p = e.Name)
                n = Marshal.PtrToStringUTF8((nint)p) ?? "";
            rows.Add(new ShmemAllocation(n, e.Offset, e.Size, e.AllocatedSize));
            named += e.AllocatedSize;
        }
        ref var main = ref Main;
        long free = main.FreeOffset;
        rows.Add(new ShmemAllocation("<anonymous>", null, free - named, free - named));
        rows.Add(new ShmemAllocation(null, free, main.TotalSize - free, main.TotalSize - free));
        return rows;
    }

    /// <summary>A loop, not a span search: MemoryExtensions.Contains&lt;byte&gt; is not precompiled by ReadyToRun and
    /// would JIT-compile in every backend as it attaches.</summary>
    private static bool HasNul(byte[] bytes)
    {
        foreach (byte b in bytes)
            if (b == 0)
                return true;
        return false;
    }

    private static byte[] EncodeName(string name)
    {
        if (string.IsNullOrEmpty(name))
            throw new ArgumentException("shared memory data structure name cannot be empty", nameof(name));
        var bytes = Utf8Text.GetBytes(name);
        if (bytes.Length > MaxNameBytes || HasNul(bytes))
            throw new ArgumentException(
                $"shared memory data structure name \"{name}\" is too long or contains NUL (at most {MaxNameBytes} bytes)",
                nameof(name));
        return bytes;
    }

    /// <summary>The published entry count, checked against the capacity (a garbage count must not send a lookup
    /// outside the index).</summary>
    private int CheckedCount()
    {
        ref var h = ref HeaderRef;
        int count = Volatile.Read(ref h.Count);
        if (count < 0 || count > h.Capacity || (long)h.Capacity * Unsafe.SizeOf<IndexEntry>() > _segment.Size - _offset)
            throw new ShmemCorruptException($"{StructureName}: entry count {count} or capacity {h.Capacity} is not valid");
        return count;
    }

    /// <summary>The region of entry <paramref name="i"/>, or <see cref="ShmemCorruptException"/> when it points
    /// outside the segment.</summary>
    private ShmemRegion RegionOf(int i)
    {
        ref var e = ref EntryRef(i);
        long offset = e.Offset, size = e.Size;
        if (offset < _offset || size < 0 || offset > _segment.Size || size > _segment.Size - offset)
            throw new ShmemCorruptException($"{StructureName}: entry {i} at offset {offset} with size {size} is outside the segment of {_segment.Size} bytes");
        return _segment.Slice(offset, size);
    }

    private unsafe int FindLocked(byte[] key)
    {
        int count = CheckedCount();
        for (int i = 0; i < count; i++)
        {
            ref var e = ref EntryRef(i);
            fixed (byte* p = e.Name)
            {
                var stored = new ReadOnlySpan<byte>(p, MaxNameBytes + 1);
                int len = stored.IndexOf((byte)0);
                if (len == key.Length && stored[..len].SequenceEqual(key))
                    return i;
            }
        }
        return -1;
    }

    private static unsafe void WriteName(ref IndexEntry e, byte[] key)
    {
        fixed (byte* p = e.Name)
        {
            var dst = new Span<byte>(p, MaxNameBytes + 1);
            dst.Clear();
            key.AsSpan().CopyTo(dst);
        }
    }

    private ref IndexEntry EntryRef(int i) =>
        ref _segment.Ref<IndexEntry>(_offset + Unsafe.SizeOf<IndexHeader>() + (long)i * Unsafe.SizeOf<IndexEntry>());

    private void Lock()
    {
        ref int word = ref Main.AllocLock;
        int me = ProcessControl.CurrentPid;
        if (Interlocked.CompareExchange(ref word, me, 0) == 0)
            return;
        var deadline = Environment.TickCount64 + (long)LockTimeout.TotalMilliseconds;
        var backoff = new Locks.Backoff();
        while (Interlocked.CompareExchange(ref word, me, 0) != 0)
        {
            if (Environment.TickCount64 > deadline)
            {
                int holder = Volatile.Read(ref word);
                throw new ShmemException("could not lock the shared memory index",
                    $"It has been held by process {holder} for more than {LockTimeout.TotalSeconds:0} s" +
                    (ProcessControl.IsAlive(holder) ? "." : ", which is no longer running."));
            }
            backoff.Once();
        }
    }

    private void Unlock() => Volatile.Write(ref Main.AllocLock, 0);
}
