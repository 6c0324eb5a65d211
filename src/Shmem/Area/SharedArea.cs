using System.Numerics;
using System.Runtime.CompilerServices;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;

namespace Postmaster.Shmem.Area;

/// <summary>
/// A shared area (PostgreSQL's dsa.c): an allocator over dynamic shared memory segments that grows by creating
/// segments on demand and hands out <see cref="AreaPointer"/>s, which mean the same in every process. A process maps
/// a segment the first time it dereferences a pointer into it.
/// <para><b>Layout.</b> Every segment starts with an <see cref="AreaSegmentHeader"/>; the first also holds the
/// <see cref="AreaControl"/> (segment table, size-class lists, the area lock). Each segment is cut into 4 kB pages:
/// its first pages hold a page map (page → first page of its span), a span descriptor per page and a free-page
/// bitmap; the rest are handed out. A request of at most <see cref="AreaSizeClasses.MaxSmall"/> bytes is rounded up
/// to a size class and carved from a 64 kB superblock of that class; a larger one gets a run of whole pages. Freed
/// objects go on their superblock's free list; an empty superblock (when its class has another) and a freed large
/// block give their pages back to the segment's bitmap. Segments grow geometrically (the initial size, doubling every
/// two segments, up to <see cref="MaxSegmentSize"/>; a larger request gets a segment of its own size).</para>
/// <para><b>Lifetime.</b> Every segment is pinned (PostgreSQL's dsa_pin): the area lives, whether or not any process
/// has it attached, until <see cref="Destroy"/>, shutdown or a crash restart. A process's mappings stay until
/// <see cref="Detach"/> or its exit.</para>
/// <para><b>Crash semantics.</b> Allocation and free run entirely under the area lock (an LWLock recorded in the
/// process's lock-owner record), so a process killed inside one makes the supervisor restart the instance; killed
/// outside, it is reconciled and the area stays consistent for everyone else (blocks it allocated and did not free
/// stay allocated until the area is destroyed).</para>
/// <para><b>Threads.</b> Safe from any thread: the area lock is taken per thread; this process's segment table is
/// guarded by a process-local lock (never held while waiting for the area lock).</para>
/// </summary>
internal sealed unsafe class SharedArea
{
    public const int MaxSegments = 1024;
    public const int PageSize = 4096;
    public const long DefaultInitialSegmentSize = 1L << 20;
    public const long MinInitialSegmentSize = 256 * 1024;
    public const long DefaultMaxSegmentSize = 1L << 30;

    /// <summary>The largest block one request can get.</summary>
    public const long MaxAllocationSize = 1L << 30;

    /// <summary>The tranche of every area's lock.</summary>
    public const string TrancheName = "SharedArea";

    private const long ControlOffset = AreaSegmentHeader.Size;
    private const long LockOffset = ControlOffset + 64;
    private const int SegmentsAtEachSize = 2;

    private readonly DsmSession _dsm;
    private readonly LockOwner _owner;
    private readonly AreaControl* _control;
    private readonly LWLockHandle _lock;
    private readonly object _mapGate = new();
    private readonly nint[] _bases = new nint[MaxSegments];
    private readonly long[] _sizes = new long[MaxSegments];
    private readonly DsmSegment?[] _segments = new DsmSegment?[MaxSegments];
    private int _detached;

    private SharedArea(DsmSession dsm, LockOwner owner, DsmSegment controlSegment)
    {
        _dsm = dsm;
        _owner = owner;
        Handle = controlSegment.Handle;
        var region = controlSegment.Region;
        string? problem = ValidateControl(region, controlSegment.Handle);
        if (problem is not null)
            throw new ShmemCorruptException($"shared area {controlSegment.Handle} is not valid", problem);
        _control = (AreaControl*)region.Pointer(ControlOffset);
        _lock = new LWLockSegment(controlSegment.Handle.Value, region).Lock(LockOffset);
        _segments[0] = controlSegment;
        _sizes[0] = region.Size;
        _bases[0] = (nint)region.Base;
    }

    /// <summary>The area's handle (its first segment's): give it to other processes to attach the area.</summary>
    public DsmHandle Handle { get; }

    /// <summary>Bytes of all the area's segments.</summary>
    public long TotalSize => Volatile.Read(ref Control->TotalSize);

    /// <summary>Segments the area has.</summary>
    public int SegmentCount => Volatile.Read(ref Control->SegmentCount);

    /// <summary>Bytes handed out and not freed (rounded up to size classes and pages).</summary>
    public long AllocatedBytes => Volatile.Read(ref Control->AllocatedBytes);

    /// <summary>Blocks handed out and not freed.</summary>
    public long Allocations => Volatile.Read(ref Control->Allocations);

    /// <summary>The most bytes of segments the area may have.</summary>
    public long SizeLimit => Control->SizeLimit;

    /// <summary>True once any process destroyed the area.</summary>
    public bool IsDestroyed => _destroyedHere || (Volatile.Read(ref _detached) == 0 && Volatile.Read(ref _control->Destroyed) != 0);

    /// <summary>The control's destroyed flag (non-zero once any process destroyed the area), for lock-free readers that
    /// check it on every operation; read only while this process has the area attached.</summary>
    internal int* DestroyedFlag => &_control->Destroyed;

    /// <summary>The control, for readers of its fields: refuses once this process detached the area (its memory may
    /// be unmapped).</summary>
    private AreaControl* Control
    {
        get
        {
            if (Volatile.Read(ref _detached) != 0)
                ThrowDetached();
            return _control;
        }
    }

    private bool _destroyedHere;

    /// <summary>Most segments an area makes: a process can map at most <see cref="Dsm.DsmControlLayout.MaxAttachmentsPerSlot"/>
    /// segments of all kinds, so an area must leave room for the rest.</summary>
    public const int SegmentLimit = Dsm.DsmControlLayout.MaxAttachmentsPerSlot / 2;

    /// <summary>True once this process detached it.</summary>
    public bool IsDetached => Volatile.Read(ref _detached) != 0;

    /// <summary>The lock owner this area object takes the area lock with.</summary>
    internal LockOwner Owner => _owner;

    /// <summary>A pointer its user keeps in the control (a named hash table's), with what it points to.</summary>
    internal (AreaPointer Root, int Kind) Root => (new AreaPointer(Volatile.Read(ref _control->Root)), Volatile.Read(ref _control->RootKind));

    /// <summary>Test hook: runs inside <see cref="Allocate"/> with the area lock held (a test kills the process there).</summary>
    internal Action? InsideLock { get; set; }

    /// <summary>The worker SDK's object for this area, made on first use (the engine never reads it).</summary>
    internal object? Facade;

    /// <summary>The instance's tranche table (for the locks of structures placed in the area).</summary>
    internal LWLockTrancheTable Tranches => _dsm.Instance.Tranches;

    /// <summary>This process's object for <see cref="Root"/> (a named hash table), made on first use.</summary>
    internal object? RootObject;

    /// <summary>Marks the area as the DSM registry's entry <paramref name="index"/>: its growth is then recorded in
    /// the entry's size. Only the creator, before publishing the area.</summary>
    internal void SetRegistryEntry(int index) => _control->RegistryEntry = index + 1;

    /// <summary>True for an area the DSM registry holds by name.</summary>
    internal bool IsNamed => Control->RegistryEntry > 0;

    /// <summary>Stores <see cref="Root"/>; only the area's creator, before publishing the area.</summary>
    internal void SetRoot(AreaPointer root, int kind)
    {
        _control->RootKind = kind;
        Volatile.Write(ref _control->Root, root.Value);
    }

    /// <summary>Creates an area: its first segment of <paramref name="initialSegmentSize"/> bytes (rounded up to
    /// pages), pinned, attached here. Limits: <paramref name="sizeLimit"/> bytes of segments in all, segments of at
    /// most <paramref name="maxSegmentSize"/> (except for a single larger block).</summary>
    public static SharedArea Create(DsmSession dsm, LockOwner owner, LWLockTrancheTable tranches,
        long initialSegmentSize = DefaultInitialSegmentSize, long sizeLimit = long.MaxValue, long maxSegmentSize = DefaultMaxSegmentSize)
    {
        ArgumentNullException.ThrowIfNull(dsm);
        ArgumentNullException.ThrowIfNull(tranches);
        long initial = CheckSizes(initialSegmentSize, sizeLimit, maxSegmentSize);
        int tranche = tranches.Register(owner, TrancheName);
        var segment = dsm.Create(initial, DsmCreateFlags.Zeroed)!;
        try
        {
            Format(segment, tranche, sizeLimit, maxSegmentSize);
            dsm.Pin(segment);
            dsm.PinMapping(segment);
            return AttachSegment(dsm, owner, segment);
        }
        catch
        {
            dsm.UnpinIfPinned(segment.Handle);
            dsm.Detach(segment);
            throw;
        }
    }

    /// <summary>The rounded size of a first segment for <paramref name="initialSegmentSize"/>, after checking the
    /// limits (<see cref="ArgumentOutOfRangeException"/> with the allowed range).</summary>
    public static long CheckSizes(long initialSegmentSize, long sizeLimit, long maxSegmentSize)
    {
        if (maxSegmentSize < MinInitialSegmentSize || maxSegmentSize > (1L << AreaPointer.OffsetBits))
            throw new ArgumentOutOfRangeException(nameof(maxSegmentSize), maxSegmentSize,
                $"the largest segment of a shared area must be {MinInitialSegmentSize} to {1L << AreaPointer.OffsetBits} bytes");
        if (initialSegmentSize < MinInitialSegmentSize || initialSegmentSize > maxSegmentSize)
            throw new ArgumentOutOfRangeException(nameof(initialSegmentSize), initialSegmentSize,
                $"the first segment of a shared area must be {MinInitialSegmentSize} to {maxSegmentSize} bytes");
        long initial = RoundUpToPage(initialSegmentSize);
        if (maxSegmentSize % PageSize != 0)
            throw new ArgumentOutOfRangeException(nameof(maxSegmentSize), maxSegmentSize,
                $"the largest segment of a shared area must be a multiple of {PageSize} bytes");
        if (sizeLimit < initial)
            throw new ArgumentOutOfRangeException(nameof(sizeLimit), sizeLimit,
                $"the size limit of a shared area must be at least its first segment ({initial} bytes)");
        return initial;
    }

    /// <summary>Lays an empty area out in <paramref name="segment"/> (zeroed, a page multiple, not yet visible to
    /// anyone): the registry's initialiser for named areas. Does not pin it.</summary>
    public static void Format(DsmSegment segment, int trancheId, long sizeLimit, long maxSegmentSize)
    {
        var region = segment.Region;
        if (region.Size % PageSize != 0 || region.Size < MinInitialSegmentSize)
            throw new ArgumentException($"a shared area's first segment must be a multiple of {PageSize} bytes, at least {MinInitialSegmentSize}", nameof(segment));
        int freePages = FormatSegment(region, 0, hasControl: true, segment.Handle.Value);
        ref var c = ref region.Ref<AreaControl>(ControlOffset);
        c.LayoutVersion = AreaControl.CurrentLayoutVersion;
        c.StructSize = AreaControl.Size;
        c.MaxSegmentsField = MaxSegments;
        c.TrancheId = trancheId;
        c.InitialSegmentSize = region.Size;
        c.MaxSegmentSize = maxSegmentSize;
        c.SizeLimit = sizeLimit;
        c.TotalSize = region.Size;
        c.ControlHandle = segment.Handle.Value;
        c.Handles[0] = segment.Handle.Value;
        c.FreePages[0] = freePages;
        c.SegmentCount = 1;
        new LWLockSegment(segment.Handle.Value, region).InitializeLock(LockOffset, trancheId);
        Volatile.Write(ref c.Magic, AreaControl.ExpectedMagic);
    }

    /// <summary>The area whose first segment this process has attached (the same object for every call in this
    /// process).</summary>
    public static SharedArea AttachSegment(DsmSession dsm, LockOwner owner, DsmSegment controlSegment)
    {
        ArgumentNullException.ThrowIfNull(controlSegment);
        if (Volatile.Read(ref controlSegment.Area) is SharedArea known)
            return known;
        var made = new SharedArea(dsm, owner, controlSegment);
        return (SharedArea)(Interlocked.CompareExchange(ref controlSegment.Area, made, null) ?? made);
    }

    /// <summary>Attaches the area <paramref name="handle"/> names (PostgreSQL's dsa_attach), or returns this process's
    /// object when it has it attached already. Throws <see cref="ShmemException"/> when the area is gone.</summary>
    public static SharedArea Attach(DsmSession dsm, LockOwner owner, DsmHandle handle, bool evenIfDestroyed = false)
    {
        ArgumentNullException.ThrowIfNull(dsm);
        var segment = dsm.FindMapping(handle);
        if (segment is not null)
        {
            if (!segment.IsMappingPinned)
                dsm.PinMapping(segment);
            var known = AttachSegment(dsm, owner, segment);
            if (!evenIfDestroyed)
                known.CheckUsable();
            return known;
        }
        segment = dsm.Attach(handle) ?? throw new ShmemException($"could not attach shared area {handle}",
            "No dynamic shared memory segment has that handle: the area was destroyed, or the handle is wrong.");
        try
        {
            dsm.PinMapping(segment);
            var area = AttachSegment(dsm, owner, segment);
            if (!evenIfDestroyed)
                area.CheckUsable();
            return area;
        }
        catch
        {
            dsm.Detach(segment); // not an area, or a destroyed one: this process keeps nothing of it
            throw;
        }
    }

    /// <summary>A block of at least <paramref name="size"/> bytes (PostgreSQL's dsa_allocate). Its contents are
    /// undefined unless <paramref name="zero"/>. Throws <see cref="ShmemException"/> <c>out of memory</c> when the area
    /// cannot grow (its size limit, the segment table, or the operating system), or returns
    /// <see cref="AreaPointer.Null"/> then with <paramref name="nullIfFull"/> (DSA_ALLOC_NO_OOM).</summary>
    public AreaPointer Allocate(long size, bool zero = false, bool nullIfFull = false)
    {
        if (size <= 0 || size > MaxAllocationSize)
            throw new ArgumentOutOfRangeException(nameof(size), size,
                $"invalid shared area allocation request size {size}: the size must be 1 to {MaxAllocationSize} bytes");
        CheckUsable();
        AreaPointer result;
        int blockSize;
        _owner.Acquire(in _lock, LWLockMode.Exclusive);
        try
        {
            CheckNotDestroyed();
            InsideLock?.Invoke();
            if (size <= AreaSizeClasses.MaxSmall)
            {
                int cls = AreaSizeClasses.ClassFor(size);
                blockSize = AreaSizeClasses.SizeOf(cls);
                result = AllocateSmall(cls, size, nullIfFull);
            }
            else
            {
                int pages = (int)((size + PageSize - 1) / PageSize);
                blockSize = pages * PageSize;
                result = AllocateLarge(pages, size, nullIfFull);
            }
            if (!result.IsNull)
            {
                _control->AllocatedBytes += blockSize;
                _control->Allocations++;
            }
        }
        finally
        {
            _owner.Release(in _lock);
        }
        if (zero && !result.IsNull)
            new Span<byte>(Address(result), (int)Math.Min(blockSize, int.MaxValue)).Clear();
        return result;
    }

    /// <summary>Gives a block back (PostgreSQL's dsa_free). Throws <see cref="ArgumentException"/> for a pointer that
    /// is not the start of a block of this area that is allocated now (a block freed twice is caught when its
    /// superblock is wholly free or its pages were given back; not always, as in PostgreSQL).</summary>
    public void Free(AreaPointer pointer)
    {
        if (pointer.IsNull)
            throw new ArgumentException("cannot free a null shared area pointer", nameof(pointer));
        CheckUsable();
        _owner.Acquire(in _lock, LWLockMode.Exclusive);
        try
        {
            CheckNotDestroyed();
            var block = Locate(pointer, out var span);
            ref var s = ref *span;
            if (s.SizeClass == 0)
            {
                _control->AllocatedBytes -= (long)s.PageCount * PageSize;
                _control->Allocations--;
                ReleasePages(block.Segment, block.FirstPage, s.PageCount);
                return;
            }
            int cls = s.SizeClass - 1;
            *(int*)Address(pointer) = s.FreeHead;
            s.FreeHead = block.ObjectIndex + 1;
            bool wasFull = s.FreeCount == 0;
            s.FreeCount++;
            _control->AllocatedBytes -= s.ObjectSize;
            _control->Allocations--;
            var spanPointer = AreaPointer.Make(block.Segment, (long)block.FirstPage * PageSize);
            if (wasFull)
                PushSpan(cls, spanPointer, span);
            else if (s.FreeCount == s.Capacity && (s.Next != 0 || s.Prev != 0))
            {
                UnlinkSpan(cls, span);
                ReleasePages(block.Segment, block.FirstPage, s.PageCount);
            }
        }
        finally
        {
            _owner.Release(in _lock);
        }
    }

    /// <summary>This process's address of <paramref name="pointer"/> (PostgreSQL's dsa_get_address), mapping its
    /// segment on first use. Only for code in this assembly that bounds its own accesses.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal byte* Address(AreaPointer pointer)
    {
        int index = pointer.SegmentIndex;
        if ((uint)index >= MaxSegments)
            ThrowOutside(pointer);
        nint b = Volatile.Read(ref _bases[index]);
        if (b == 0)
            b = Map(index, pointer);
        long offset = pointer.Offset;
        if ((ulong)offset >= (ulong)_sizes[index])
            ThrowOutside(pointer);
        return (byte*)b + offset;
    }

    /// <summary>This process's address of <paramref name="length"/> bytes at <paramref name="pointer"/>, or null when they
    /// are not inside a segment this process has mapped: never throws and never maps (for lock-free readers that may
    /// hold a stale pointer).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal byte* TryAddress(AreaPointer pointer, long length)
    {
        int index = pointer.SegmentIndex;
        if ((uint)index >= MaxSegments)
            return null;
        nint b = Volatile.Read(ref _bases[index]);
        long offset = pointer.Offset;
        if (b == 0 || (ulong)length > (ulong)_sizes[index] || (ulong)offset > (ulong)(_sizes[index] - length))
            return null;
        return (byte*)b + offset;
    }

    /// <summary><paramref name="length"/> bytes at <paramref name="pointer"/>, bounds-checked against its segment.</summary>
    public ShmemRegion Region(AreaPointer pointer, long length)
    {
        byte* p = Address(pointer);
        if (length < 0 || length > _sizes[pointer.SegmentIndex] - pointer.Offset)
            throw new ArgumentOutOfRangeException(nameof(length), length,
                $"{length} bytes at shared area pointer {pointer} run past the end of its segment");
        return new ShmemRegion(p, length);
    }

    /// <summary>The whole block that starts at <paramref name="pointer"/> (its size class's or its pages' bytes). Throws
    /// <see cref="ArgumentException"/> when no allocated block starts there.</summary>
    public ShmemRegion Block(AreaPointer pointer)
    {
        if (pointer.IsNull)
            throw new ArgumentException("a null shared area pointer has no block", nameof(pointer));
        CheckUsable();
        Locate(pointer, out var span);
        long size = span->SizeClass == 0 ? (long)span->PageCount * PageSize : span->ObjectSize;
        return new ShmemRegion(Address(pointer), size);
    }

    /// <summary>The lock segment (DSM handle, whole mapping) that holds <paramref name="pointer"/>: for placing and
    /// finding LWLocks inside blocks of the area. The block must be 64-byte aligned in its segment (every block of
    /// 64 bytes or more is, and every page run).</summary>
    internal LWLockSegment LockSegment(AreaPointer pointer)
    {
        Address(pointer);
        var segment = _segments[pointer.SegmentIndex]!;
        return new LWLockSegment(segment.Handle.Value, segment.Region);
    }

    /// <summary>Destroys the area (PostgreSQL's dsa_unpin of the last pin): marks it destroyed so that every
    /// process's next operation fails, removes every segment's pin and detaches this process. Each segment is gone once
    /// the last process that has it mapped detaches or exits. Idempotent, and completes a destroy that an earlier
    /// process began and did not finish (it died between marking the area and removing the pins). A named area is
    /// destroyed by releasing its name (<paramref name="byRegistry"/>), never directly.</summary>
    public void Destroy(bool byRegistry = false)
    {
        if (Volatile.Read(ref _detached) != 0)
            ThrowDetached();
        if (!byRegistry && _control->RegistryEntry > 0)
            throw new InvalidOperationException($"{this} belongs to the DSM registry: release its name instead of destroying it");
        uint[] handles;
        _owner.Acquire(in _lock, LWLockMode.Exclusive);
        try
        {
            _control->Destroyed = 1;
            int count = Math.Clamp(_control->SegmentCount, 0, MaxSegments);
            handles = new uint[count];
            for (int i = 0; i < count; i++)
                handles[i] = _control->Handles[i];
        }
        finally
        {
            _owner.Release(in _lock);
        }
        _destroyedHere = true;
        Detach();
        foreach (uint h in handles)
            if (h != 0)
                _dsm.UnpinIfPinned(new DsmHandle(h));
    }

    /// <summary>Unmaps every segment of the area this process has mapped (PostgreSQL's dsa_detach); the area lives on.
    /// Afterwards this object refuses every operation. Idempotent.</summary>
    public void Detach()
    {
        if (Interlocked.Exchange(ref _detached, 1) != 0)
            return;
        lock (_mapGate)
        {
            for (int i = MaxSegments - 1; i >= 0; i--)
            {
                var segment = _segments[i];
                if (segment is null)
                    continue;
                Volatile.Write(ref _bases[i], 0);
                _segments[i] = null;
                if (i == 0)
                    Interlocked.CompareExchange(ref segment.Area, null, this);
                if (segment.IsAttached)
                    _dsm.Detach(segment);
            }
        }
    }

    /// <summary>"shared area H (N segments, B bytes)".</summary>
    public override string ToString() => Volatile.Read(ref _detached) != 0
        ? $"shared area {Handle} (detached)"
        : $"shared area {Handle} ({SegmentCount} segments, {TotalSize} bytes)";

    internal void CheckUsable()
    {
        if (Volatile.Read(ref _detached) != 0)
            ThrowDetached();
        if (Volatile.Read(ref _control->Destroyed) != 0)
            ThrowDestroyed();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDetached() =>
        throw new ObjectDisposedException(nameof(SharedArea), $"shared area {Handle} is detached in this process");

    private void CheckNotDestroyed()
    {
        if (_control->Destroyed != 0)
            ThrowDestroyed();
    }

    private void ThrowDestroyed() => throw new ShmemException($"shared area {Handle} has been destroyed");

    private AreaPointer AllocateSmall(int cls, long size, bool nullIfFull)
    {
        ulong head = _control->ClassHeads[cls];
        if (head == 0)
        {
            var pages = AllocatePages(AreaSizeClasses.SuperblockPages, size, nullIfFull);
            if (pages.IsNull)
                return AreaPointer.Null;
            var newSpan = SpanAt(pages.SegmentIndex, (int)(pages.Offset / PageSize));
            int objectSize = AreaSizeClasses.SizeOf(cls);
            *newSpan = default;
            newSpan->PageCount = AreaSizeClasses.SuperblockPages;
            newSpan->SizeClass = cls + 1;
            newSpan->ObjectSize = objectSize;
            newSpan->Capacity = AreaSizeClasses.SuperblockPages * PageSize / objectSize;
            newSpan->FreeCount = newSpan->Capacity;
            PushSpan(cls, pages, newSpan);
            head = pages.Value;
        }
        var spanPointer = new AreaPointer(head);
        var span = SpanAt(spanPointer.SegmentIndex, (int)(spanPointer.Offset / PageSize));
        int index;
        if (span->FreeHead != 0)
        {
            index = span->FreeHead - 1;
            if ((uint)index >= (uint)span->BumpNext)
                throw new ShmemCorruptException($"shared area {Handle}: the free list of the span at {spanPointer} is damaged",
                    $"It names object {index}; {span->BumpNext} were ever handed out.");
            span->FreeHead = *(int*)Address(spanPointer.Add((long)index * span->ObjectSize));
        }
        else
            index = span->BumpNext++;
        if (--span->FreeCount == 0)
            UnlinkSpan(cls, span);
        return spanPointer.Add((long)index * span->ObjectSize);
    }

    private AreaPointer AllocateLarge(int pages, long size, bool nullIfFull)
    {
        var run = AllocatePages(pages, size, nullIfFull);
        if (run.IsNull)
            return run;
        var span = SpanAt(run.SegmentIndex, (int)(run.Offset / PageSize));
        *span = default;
        span->PageCount = pages;
        span->SizeClass = 0;
        span->ObjectSize = (int)Math.Min((long)pages * PageSize, int.MaxValue);
        span->Capacity = 1;
        return run;
    }

    /// <summary>A run of <paramref name="pages"/> free pages, marked used and mapped to a span at its first page;
    /// creates a segment when no segment has such a run. Under the area lock.</summary>
    private AreaPointer AllocatePages(int pages, long request, bool nullIfFull)
    {
        int count = _control->SegmentCount;
        for (int i = 0; i < count; i++)
        {
            if (_control->FreePages[i] < pages)
                continue;
            int first = FindRun(i, pages);
            if (first >= 0)
                return TakePages(i, first, pages);
        }
        int created = CreateSegment(pages, request, nullIfFull);
        if (created < 0)
            return AreaPointer.Null;
        int start = FindRun(created, pages);
        if (start < 0)
            throw new InvalidOperationException($"internal error: new segment {created} of {this} has no run of {pages} pages; please report");
        return TakePages(created, start, pages);
    }

    private AreaPointer TakePages(int segment, int first, int pages)
    {
        ref var header = ref Header(segment);
        byte* b = SegmentBase(segment);
        ulong* bitmap = (ulong*)(b + header.BitmapOffset);
        int* map = (int*)(b + header.PageMapOffset);
        for (int p = first; p < first + pages; p++)
        {
            bitmap[p >> 6] &= ~(1UL << (p & 63));
            map[p] = first + 1;
        }
        _control->FreePages[segment] -= pages;
        return AreaPointer.Make(segment, (long)first * PageSize);
    }

    private void ReleasePages(int segment, int first, int pages)
    {
        ref var header = ref Header(segment);
        byte* b = SegmentBase(segment);
        ulong* bitmap = (ulong*)(b + header.BitmapOffset);
        int* map = (int*)(b + header.PageMapOffset);
        for (int p = first; p < first + pages; p++)
        {
            bitmap[p >> 6] |= 1UL << (p & 63);
            map[p] = 0;
        }
        ((AreaSpan*)(b + header.SpansOffset))[first] = default;
        _control->FreePages[segment] += pages;
    }

    /// <summary>The first page of a run of <paramref name="pages"/> free pages in segment <paramref name="segment"/>,
    /// or -1 (first fit over the bitmap, 64 pages per step where they are all free or all used).</summary>
    private int FindRun(int segment, int pages)
    {
        ref var header = ref Header(segment);
        ulong* bitmap = (ulong*)(SegmentBase(segment) + header.BitmapOffset);
        int words = (header.PageCount + 63) >> 6;
        int run = 0, start = 0;
        for (int w = header.FirstPage >> 6; w < words; w++)
        {
            ulong bits = bitmap[w];
            if (bits == 0)
            {
                run = 0;
                continue;
            }
            if (bits == ulong.MaxValue)
            {
                if (run == 0)
                    start = w << 6;
                run += 64;
                if (run >= pages)
                    return start;
                continue;
            }
            for (int bit = 0; bit < 64; bit++)
            {
                if ((bits & (1UL << bit)) == 0)
                {
                    run = 0;
                    continue;
                }
                if (run++ == 0)
                    start = (w << 6) + bit;
                if (run >= pages)
                    return start;
            }
        }
        return -1;
    }

    /// <summary>Creates the next segment, big enough for a run of <paramref name="pages"/>, and returns its index;
    /// -1 when the area cannot grow and <paramref name="nullIfFull"/>. Under the area lock (as PostgreSQL's
    /// make_new_segment): the system calls run with it held, and nobody else allocates meanwhile.</summary>
    private int CreateSegment(int pages, long request, bool nullIfFull)
    {
        int index = _control->SegmentCount;
        long needed = SegmentSizeFor(pages);
        int doublings = Math.Min(index / SegmentsAtEachSize, 40);
        long geometric = _control->InitialSegmentSize > (_control->MaxSegmentSize >> doublings)
            ? _control->MaxSegmentSize
            : _control->InitialSegmentSize << doublings; // saturating: never past the largest segment
        long size = Math.Max(needed, Math.Min(_control->MaxSegmentSize, geometric));
        long total = _control->TotalSize;
        if (total + size > _control->SizeLimit)
            size = needed;
        string? reason = null;
        if (index >= SegmentLimit)
            reason = $"The area has all {SegmentLimit} segments it can have (a process maps at most {Dsm.DsmControlLayout.MaxAttachmentsPerSlot} segments).";
        else if (needed > (1L << AreaPointer.OffsetBits))
            reason = "The block is larger than a segment can be.";
        else if (total + size > _control->SizeLimit)
            reason = $"The area has {total} bytes of its limit of {_control->SizeLimit}; a new segment needs {size}.";
        DsmSegment? segment = null;
        if (reason is null)
        {
            try
            {
                segment = _dsm.Create(size, DsmCreateFlags.Zeroed | DsmCreateFlags.NullIfMaxSegments);
                if (segment is null)
                    reason = "The instance has no free dynamic shared memory slot (too many dynamic shared memory segments).";
            }
            catch (ShmemException e) when (nullIfFull)
            {
                reason = e.Message;
            }
            catch (ShmemException e)
            {
                throw new ShmemException("out of memory", $"Failed on shared area request of size {request}: could not create a segment of {size} bytes.",
                    e.Hint ?? "Free space in /dev/shm, or raise the limits of dynamic shared memory.", e);
            }
        }
        if (segment is null)
        {
            if (nullIfFull)
                return -1;
            throw new ShmemException("out of memory", $"Failed on shared area request of size {request}. {reason}");
        }
        try
        {
            int free = FormatSegment(segment.Region, index, hasControl: false, _control->ControlHandle);
            _dsm.Pin(segment);
            _dsm.PinMapping(segment);
            lock (_mapGate)
            {
                _segments[index] = segment;
                _sizes[index] = segment.Size;
                Volatile.Write(ref _bases[index], (nint)segment.Region.Base);
            }
            _control->Handles[index] = segment.Handle.Value;
            _control->FreePages[index] = free;
            _control->TotalSize = total + segment.Size;
            Volatile.Write(ref _control->SegmentCount, index + 1);
        }
        catch
        {
            lock (_mapGate)
            {
                _segments[index] = null;
                Volatile.Write(ref _bases[index], 0);
            }
            _dsm.UnpinIfPinned(segment.Handle);
            _dsm.Detach(segment);
            throw;
        }
        if (_control->RegistryEntry > 0)
            Registry.DsmRegistry.RecordTotalSize(_dsm.Instance, _owner, _control->RegistryEntry - 1, _control->ControlHandle, _control->TotalSize);
        return index;
    }

    /// <summary>The smallest segment that holds a run of <paramref name="pages"/> after its metadata.</summary>
    private static long SegmentSizeFor(int pages)
    {
        long size = ((long)pages + 1) * PageSize;
        while (true)
        {
            var plan = Plan(size, hasControl: false);
            int available = plan.PageCount - plan.FirstPage;
            if (available >= pages)
                return size;
            size += (long)(pages - available) * PageSize;
        }
    }

    private readonly record struct SegmentPlan(int PageCount, long PageMap, long Spans, long Bitmap, int FirstPage);

    private static SegmentPlan Plan(long size, bool hasControl)
    {
        int pageCount = (int)(size / PageSize);
        long offset = AreaSegmentHeader.Size + (hasControl ? AreaControl.Size : 0);
        long map = Align(offset, 64);
        offset = map + (long)pageCount * sizeof(int);
        long spans = Align(offset, 64);
        offset = spans + (long)pageCount * AreaSpan.Size;
        long bitmap = Align(offset, 64);
        offset = bitmap + (long)((pageCount + 63) >> 6) * sizeof(ulong);
        int first = (int)((offset + PageSize - 1) / PageSize);
        return new SegmentPlan(pageCount, map, spans, bitmap, first);
    }

    /// <summary>Writes a segment's header and metadata (the memory is zeroed); returns its free pages.</summary>
    private static int FormatSegment(ShmemRegion region, int index, bool hasControl, uint areaId)
    {
        var plan = Plan(region.Size, hasControl);
        if (plan.FirstPage >= plan.PageCount)
            throw new ArgumentException($"a shared area segment of {region.Size} bytes has no room after its metadata");
        ref var h = ref region.Ref<AreaSegmentHeader>(0);
        h.LayoutVersion = AreaSegmentHeader.CurrentLayoutVersion;
        h.SegmentSize = region.Size;
        h.Index = index;
        h.PageCount = plan.PageCount;
        h.FirstPage = plan.FirstPage;
        h.PageMapOffset = plan.PageMap;
        h.SpansOffset = plan.Spans;
        h.BitmapOffset = plan.Bitmap;
        h.AreaId = areaId;
        ulong* bitmap = (ulong*)region.Pointer(plan.Bitmap);
        for (int p = plan.FirstPage; p < plan.PageCount; p++)
            bitmap[p >> 6] |= 1UL << (p & 63);
        Volatile.Write(ref h.Magic, AreaSegmentHeader.ExpectedMagic);
        return plan.PageCount - plan.FirstPage;
    }

    /// <summary>Null when <paramref name="region"/> holds a valid area control with its first segment's header.</summary>
    private static string? ValidateControl(ShmemRegion region, DsmHandle handle)
    {
        if (region.Size < ControlOffset + AreaControl.Size)
            return $"The segment has {region.Size} bytes, too few for an area's control data.";
        ref var c = ref region.Ref<AreaControl>(ControlOffset);
        if (Volatile.Read(ref c.Magic) != AreaControl.ExpectedMagic)
            return $"Found magic 0x{c.Magic:X8} in the control, expected 0x{AreaControl.ExpectedMagic:X8}.";
        if (c.LayoutVersion != AreaControl.CurrentLayoutVersion)
            return $"The control has layout version {c.LayoutVersion}; this build reads version {AreaControl.CurrentLayoutVersion}.";
        if (c.StructSize != AreaControl.Size || c.MaxSegmentsField != MaxSegments)
            return $"The control says {c.StructSize} bytes and {c.MaxSegmentsField} segments; this build expects {AreaControl.Size} and {MaxSegments}.";
        int count = Volatile.Read(ref c.SegmentCount);
        if (count < 1 || count > MaxSegments)
            return $"The control counts {count} segments (1 to {MaxSegments} are possible).";
        if (c.ControlHandle != handle.Value || c.Handles[0] != handle.Value)
            return $"The control names segment {c.ControlHandle} as its own, not {handle}.";
        return ValidateHeader(region, 0, handle.Value);
    }

    private static string? ValidateHeader(ShmemRegion region, int index, uint areaId)
    {
        ref var h = ref region.Ref<AreaSegmentHeader>(0);
        if (Volatile.Read(ref h.Magic) != AreaSegmentHeader.ExpectedMagic)
            return $"Segment {index} has magic 0x{h.Magic:X8}, expected 0x{AreaSegmentHeader.ExpectedMagic:X8}.";
        if (h.LayoutVersion != AreaSegmentHeader.CurrentLayoutVersion)
            return $"Segment {index} has layout version {h.LayoutVersion}; this build reads version {AreaSegmentHeader.CurrentLayoutVersion}.";
        if (h.SegmentSize != region.Size || h.Index != index || h.AreaId != areaId)
            return $"Segment {index} says it is segment {h.Index} of area {h.AreaId} with {h.SegmentSize} bytes; it is mapped with {region.Size}.";
        var plan = Plan(region.Size, index == 0);
        if (h.PageCount != plan.PageCount || h.FirstPage != plan.FirstPage || h.PageMapOffset != plan.PageMap
            || h.SpansOffset != plan.Spans || h.BitmapOffset != plan.Bitmap)
            return $"Segment {index}'s page layout does not match its size.";
        return null;
    }

    /// <summary>Maps segment <paramref name="index"/> in this process (first dereference of a pointer into it).</summary>
    private nint Map(int index, AreaPointer pointer)
    {
        lock (_mapGate)
        {
            nint known = _bases[index];
            if (known != 0)
                return known;
            if (Volatile.Read(ref _detached) != 0)
                throw new ObjectDisposedException(nameof(SharedArea), $"shared area {Handle} is detached in this process");
            if (index >= Volatile.Read(ref _control->SegmentCount))
                ThrowOutside(pointer);
            var handle = new DsmHandle(Volatile.Read(ref _control->Handles[index]));
            var segment = _dsm.FindMapping(handle);
            if (segment is null)
            {
                segment = _dsm.Attach(handle);
                if (segment is null)
                    throw new ShmemException($"could not map segment {index} of shared area {Handle}",
                        Volatile.Read(ref _control->Destroyed) != 0 ? "The area has been destroyed." : $"Dynamic shared memory segment {handle} does not exist.");
            }
            try
            {
                if (!segment.IsMappingPinned)
                    _dsm.PinMapping(segment);
                string? problem = ValidateHeader(segment.Region, index, _control->ControlHandle);
                if (problem is not null)
                    throw new ShmemCorruptException($"segment {index} of shared area {Handle} is not valid", problem);
            }
            catch
            {
                _dsm.Detach(segment);
                throw;
            }
            _segments[index] = segment;
            _sizes[index] = segment.Size;
            Volatile.Write(ref _bases[index], (nint)segment.Region.Base);
            return (nint)segment.Region.Base;
        }
    }

    private readonly record struct BlockPosition(int Segment, int FirstPage, int ObjectIndex);

    /// <summary>Where the allocated block starting at <paramref name="pointer"/> is, with its span; throws
    /// <see cref="ArgumentException"/> when no allocated block starts there.</summary>
    private BlockPosition Locate(AreaPointer pointer, out AreaSpan* span)
    {
        int segment = pointer.SegmentIndex;
        if ((uint)segment >= (uint)Volatile.Read(ref _control->SegmentCount))
            ThrowBadPointer(pointer);
        byte* b = SegmentBase(segment);
        ref var header = ref Header(segment);
        long offset = pointer.Offset;
        long page = offset / PageSize;
        if (page < header.FirstPage || page >= header.PageCount)
            ThrowBadPointer(pointer);
        int first = ((int*)(b + header.PageMapOffset))[page] - 1;
        if (first < header.FirstPage || first > page)
            ThrowBadPointer(pointer);
        span = (AreaSpan*)(b + header.SpansOffset) + first;
        long delta = offset - (long)first * PageSize;
        if (span->SizeClass == 0)
        {
            if (delta != 0)
                ThrowBadPointer(pointer);
            return new BlockPosition(segment, first, 0);
        }
        if (span->SizeClass > AreaSizeClasses.Count || span->ObjectSize <= 0 || delta % span->ObjectSize != 0
            || delta / span->ObjectSize >= span->BumpNext || span->FreeCount >= span->Capacity)
            ThrowBadPointer(pointer);
        return new BlockPosition(segment, first, (int)(delta / span->ObjectSize));
    }

    /// <summary>Makes <paramref name="span"/> the head of its class's list. Every span it touches is resolved (its
    /// segment mapped, which can fail) before anything changes, so a failure leaves the list as it was.</summary>
    private void PushSpan(int cls, AreaPointer spanPointer, AreaSpan* span)
    {
        ulong head = _control->ClassHeads[cls];
        AreaSpan* oldHead = head != 0 ? SpanOf(new AreaPointer(head)) : null;
        span->Prev = 0;
        span->Next = head;
        if (oldHead != null)
            oldHead->Prev = spanPointer.Value;
        _control->ClassHeads[cls] = spanPointer.Value;
    }

    /// <summary>Takes <paramref name="span"/> out of its class's list; like <see cref="PushSpan"/>, resolves before it
    /// changes anything.</summary>
    private void UnlinkSpan(int cls, AreaSpan* span)
    {
        AreaSpan* prev = span->Prev != 0 ? SpanOf(new AreaPointer(span->Prev)) : null;
        AreaSpan* next = span->Next != 0 ? SpanOf(new AreaPointer(span->Next)) : null;
        if (prev != null)
            prev->Next = span->Next;
        else
            _control->ClassHeads[cls] = span->Next;
        if (next != null)
            next->Prev = span->Prev;
        span->Next = 0;
        span->Prev = 0;
    }

    private AreaSpan* SpanOf(AreaPointer spanPointer) => SpanAt(spanPointer.SegmentIndex, (int)(spanPointer.Offset / PageSize));

    private AreaSpan* SpanAt(int segment, int firstPage)
    {
        ref var header = ref Header(segment);
        return (AreaSpan*)(SegmentBase(segment) + header.SpansOffset) + firstPage;
    }

    private ref AreaSegmentHeader Header(int segment) => ref *(AreaSegmentHeader*)SegmentBase(segment);

    private byte* SegmentBase(int segment)
    {
        nint b = Volatile.Read(ref _bases[segment]);
        return b != 0 ? (byte*)b : (byte*)Map(segment, AreaPointer.Make(segment, 0));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadPointer(AreaPointer pointer) =>
        throw new ArgumentException($"invalid shared area pointer {pointer}: no allocated block of {this} starts there", nameof(pointer));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowOutside(AreaPointer pointer) =>
        throw new ArgumentException($"invalid shared area pointer {pointer}: it is outside {this}", nameof(pointer));

    private static long RoundUpToPage(long size) => (size + PageSize - 1) / PageSize * PageSize;

    private static long Align(long value, long alignment) => (value + alignment - 1) / alignment * alignment;
}
