using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Layout;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.Shmem;

/// <summary>What to create: the OS kind, the data directory it belongs to, and huge-page policy.</summary>
internal sealed record MainSegmentSpec(SegmentKind Kind, string DataDir, FileStat DataDirStat, HugePagesMode HugePages);

internal enum HugePagesMode
{
    Off,
    Try,
    On,
}

/// <summary>How an existing segment found at a candidate key relates to us (PostgreSQL's IpcMemoryState).</summary>
internal enum SegmentState
{
    /// <summary>Nothing there (or it vanished while we looked).</summary>
    Gone,

    /// <summary>Not ours: another data directory, another user, or not a postmaster segment.</summary>
    Foreign,

    /// <summary>Ours (same data directory) and no process has it attached: a dead instance's; safe to remove.</summary>
    Unattached,

    /// <summary>Ours and still attached by some process.</summary>
    Attached,

    /// <summary>Could not tell; treated as in use (be conservative).</summary>
    AnalysisFailure,
}

/// <summary>
/// The main shared-memory segment: header at offset 0, the named-allocation index, then the modules' structures.
/// Lifecycle: the postmaster creates it (<see cref="Create"/>), recycling the key of a dead instance of the same data
/// directory and skipping foreign segments; children attach by key/id or name (<see cref="Attach"/>) and validate the
/// header; the postmaster destroys it at shutdown or crash reinitialisation (<see cref="Destroy"/>).
/// </summary>
internal sealed class MainSegment : IDisposable
{
    /// <summary>POSIX names are "/postmaster.KEY"; the key starts at the data directory's inode, like SysV keys.</summary>
    public const string PosixNamePrefix = "/postmaster.";
    internal const int MaxKeyProbes = 1000;

    private readonly FileStat _dataDir;

    private MainSegment(MappedSegment mapping, ShmemIndex index, FileStat dataDir)
    {
        Mapping = mapping;
        Index = index;
        _dataDir = dataDir;
    }

    public MappedSegment Mapping { get; }

    public ShmemIndex Index { get; }

    public ShmemRegion Region => Mapping.Region;

    public ref MainHeader Header => ref Mapping.Region.Ref<MainHeader>(0);

    public static string PosixName(long key) => PosixNamePrefix + key;

    /// <summary>
    /// Creates the segment for <paramref name="plan"/>: probes keys from the data directory's inode upwards;
    /// a foreign segment moves to the next key; a dead instance's segment of this data directory is handed to
    /// <paramref name="onOrphan"/> (to clean up what it lists) and removed; a live one is a FATAL error.
    /// </summary>
    public static MainSegment Create(MainSegmentSpec spec, ShmemPlan plan, IShmemLogger log,
        Action<MainSegmentOrphan>? onOrphan = null)
    {
        long size = plan.TotalSize();
        long key = InitialKey(spec.DataDirStat.Inode);
        for (int probe = 0; probe < MaxKeyProbes; probe++)
        {
            var mapping = TryCreateAt(spec, key, size, log);
            if (mapping is not null)
                return Initialize(mapping, spec, plan);

            var (state, id, header) = Classify(spec.Kind, key, spec.DataDirStat);
            switch (state)
            {
                case SegmentState.Gone:
                    log.Write(ShmemLogLevel.Log, $"shared memory block (key {key}, ID {id}) deleted during startup");
                    continue; // retry the same key
                case SegmentState.Foreign:
                    log.Write(ShmemLogLevel.Debug, $"shared memory key {key} is in use by something else; trying the next key");
                    key = NextKey(key);
                    continue;
                case SegmentState.Unattached:
                    if (!RemoveOrphan(spec.Kind, key, id, header!.Value, log, onOrphan))
                        key = NextKey(key);
                    continue;
                default:
                    throw InUse(spec, key, id);
            }
        }
        throw new ShmemException($"could not find a free shared memory key after {MaxKeyProbes} attempts");
    }

    /// <summary>
    /// Removes a dead instance's main segment (state <see cref="SegmentState.Unattached"/>), after handing its header
    /// to <paramref name="onOrphan"/> (which cleans up what it lists). False when it could not be removed.
    /// </summary>
    public static bool RemoveOrphan(SegmentKind kind, long key, long id, MainHeader header, IShmemLogger log,
        Action<MainSegmentOrphan>? onOrphan)
    {
        log.Write(ShmemLogLevel.Log,
            $"removing shared memory block (key {key}, ID {id}) left behind by a previous postmaster (PID {header.CreatorPid})");
        onOrphan?.Invoke(new MainSegmentOrphan(kind, key, id, header));
        int err = RemoveExisting(kind, key, id);
        if (err == 0 || err == Errno.ENOENT || err == Errno.EINVAL || err == Errno.EIDRM)
            return true;
        log.Write(ShmemLogLevel.Warning, $"could not remove shared memory block (key {key}, ID {id}): {Libc.StrError(err)}");
        return false;
    }

    /// <summary>
    /// Classifies the segment at <paramref name="key"/> (SysV) or "/postmaster.KEY" (POSIX), PostgreSQL's
    /// PGSharedMemoryAttach: magic and data-directory identity decide ownership; the attach count (SysV nattch, or
    /// the POSIX attach lock) decides whether a process still uses it.
    /// </summary>
    public static (SegmentState State, long Id, MainHeader? Header) Classify(SegmentKind kind, long key, FileStat dataDir)
    {
        return kind == SegmentKind.SysV ? ClassifySysV(key, dataDir) : ClassifyPosix(key, dataDir);
    }

    /// <summary>
    /// Attaches an existing segment in a child process and validates it: it must exist, be the very object the
    /// postmaster recorded (SysV: the id still carries the key; POSIX: the name still leads to the inode recorded as
    /// its ID), be this user's (SysV: checked with IPC_STAT before shmat), and its header and index must pass
    /// <see cref="MainHeader.Validate"/> (against <paramref name="dataDir"/>) and <see cref="ShmemIndex.Validate(ShmemRegion, long)"/>.
    /// Every such failure is a <see cref="ShmemCorruptException"/> naming the problem; other OS failures are
    /// <see cref="OsCallException"/>.
    /// </summary>
    public static MainSegment Attach(SegmentKind kind, long key, long id, FileStat dataDir)
    {
        var mapping = (kind == SegmentKind.SysV
                          ? MappedSegment.AttachSysV((int)id, key)
                          : MappedSegment.AttachPosix(PosixName(key), key))
                      ?? throw new ShmemCorruptException($"main shared memory segment (key {key}, ID {id}) no longer exists");
        try
        {
            if (kind == SegmentKind.SysV && SysVShm.TryStat((int)id, out var info, out _) && info.Key != (int)key)
                throw new ShmemCorruptException($"main shared memory segment (ID {id}) has key {(uint)info.Key}, not {key}: it is another segment");
            if (kind == SegmentKind.Posix && mapping.Id != id)
                throw new ShmemCorruptException($"main shared memory segment \"{PosixName(key)}\" is inode {mapping.Id}, not {id}: it is another object");
            var header = Validate(mapping.Region, dataDir);
            return new MainSegment(mapping, ShmemIndex.Attach(mapping.Region, header.IndexOffset), dataDir);
        }
        catch
        {
            mapping.Dispose();
            throw;
        }
    }

    /// <summary>Checks magic, layout version, sizes, offsets and data-directory identity
    /// (<see cref="MainHeader.Validate"/>); returns a copy of the header, or throws <see cref="ShmemCorruptException"/>
    /// naming the problem.</summary>
    public static MainHeader Validate(ShmemRegion region, FileStat dataDir)
    {
        if (MainHeader.Validate(region, dataDir) is { } problem)
            throw new ShmemCorruptException(problem);
        return region.Ref<MainHeader>(0);
    }

    /// <summary>
    /// Checks this mapping again, as every reader must before trusting it: the header
    /// (<see cref="MainHeader.Validate"/>, with the data directory it was created or attached for) and the index
    /// (<see cref="ShmemIndex.Validate()"/>, at the offset found when it was attached: a header that now names another
    /// offset is reported). Null when valid, else the first problem. Cheap (the header and the index entries); never throws.
    /// </summary>
    public string? Validate()
    {
        if (MainHeader.Validate(Region, _dataDir) is { } problem)
            return problem;
        long indexOffset = Region.Ref<MainHeader>(0).IndexOffset;
        if (indexOffset != Index.Offset)
            return $"{MainHeader.StructureName}: index offset {indexOffset} differs from {Index.Offset}, where the index was found";
        return Index.Validate();
    }

    /// <summary>Removes the OS object (the mapping stays valid until Dispose). Never throws; returns 0 or errno.</summary>
    public int Destroy() => Mapping.Destroy();

    public void Dispose() => Mapping.Dispose();

    internal static long InitialKey(ulong inode)
    {
        long key = (long)(inode & 0x7FFF_FFFF);
        return key == 0 ? 1 : key; // 0 is IPC_PRIVATE
    }

    internal static long NextKey(long key) => key >= 0x7FFF_FFFF ? 1 : key + 1;

    private static MappedSegment? TryCreateAt(MainSegmentSpec spec, long key, long size, IShmemLogger log)
    {
        if (spec.Kind == SegmentKind.SysV)
        {
            if (spec.HugePages != HugePagesMode.Off)
            {
                long hugeSize = ShmemSize.AlignUp(size, HugePageSize());
                try
                {
                    var huge = MappedSegment.CreateSysV((int)key, hugeSize, huge: true);
                    if (huge is not null)
                        return huge;
                    // a collision: classify below as usual
                    return null;
                }
                catch (OsCallException e) when (spec.HugePages == HugePagesMode.Try)
                {
                    log.Write(ShmemLogLevel.Debug, $"shmget with SHM_HUGETLB failed, huge pages disabled: {e.Message}");
                }
            }
            return MappedSegment.CreateSysV((int)key, size);
        }
        if (spec.HugePages == HugePagesMode.On)
            throw new ShmemException("huge pages not supported with the current \"shared_memory_type\" setting",
                hint: "Use shared_memory_type = sysv, or set huge_pages = try or off.");
        return MappedSegment.CreatePosix(PosixName(key), size, key);
    }

    private static MainSegment Initialize(MappedSegment mapping, MainSegmentSpec spec, ShmemPlan plan)
    {
        try
        {
            var region = mapping.Region;
            ref var h = ref region.Ref<MainHeader>(0);
            long indexOffset = ShmemSize.CacheLineAlign(MainHeader.Size);
            h.HeaderSize = MainHeader.Size;
            h.CreatorPid = ProcessControl.CurrentPid;
            h.TotalSize = region.Size;
            h.DataDirDevice = spec.DataDirStat.Device;
            h.DataDirInode = spec.DataDirStat.Inode;
            h.IndexOffset = indexOffset;
            h.FreeOffset = ShmemSize.Add(indexOffset, ShmemSize.CacheLineAlign(ShmemIndex.RequiredSize(plan.IndexCapacity)));
            h.CreatedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            h.Generation = 1;
            h.LayoutVersion = MainHeader.CurrentLayoutVersion;
            var index = ShmemIndex.Initialize(region, indexOffset, plan.IndexCapacity);
            Volatile.Write(ref h.Magic, MainHeader.ExpectedMagic); // valid only once the index exists
            foreach (var request in plan.Requests)
            {
                var space = index.InitStruct(request.Name, request.Size, out _);
                request.Initialize?.Invoke(space, region);
            }
            return new MainSegment(mapping, index, spec.DataDirStat);
        }
        catch
        {
            mapping.Destroy();
            mapping.Dispose();
            throw;
        }
    }

    private static unsafe (SegmentState, long, MainHeader?) ClassifySysV(long key, FileStat dataDir)
    {
        int id = SysVShm.Lookup((int)key);
        if (id < 0)
            return (SegmentState.Foreign, -1, null); // exists (we collided) but is not visible to us
        if (!SysVShm.TryStat(id, out var info, out int errno))
            return (errno is Errno.EINVAL or Errno.EIDRM ? SegmentState.Gone : errno == Errno.EACCES ? SegmentState.Foreign : SegmentState.AnalysisFailure, id, null);
        long attachedBefore = info.AttachCount;
        if (!SysVShm.IsOwnedByUs(info) || info.Size < MainHeader.Size)
            return (SegmentState.Foreign, id, null); // decided from IPC_STAT alone: never attached (PGSharedMemoryAttach)
        byte* p = SysVShm.TryAttach(id, readOnly: true, out errno);
        if (p == null)
            return (errno is Errno.EINVAL or Errno.EIDRM ? SegmentState.Gone : errno == Errno.EACCES ? SegmentState.Foreign : SegmentState.AnalysisFailure, id, null);
        try
        {
            var h = *(MainHeader*)p;
            if (h.Magic != MainHeader.ExpectedMagic || h.DataDirDevice != dataDir.Device || h.DataDirInode != dataDir.Inode)
                return (SegmentState.Foreign, id, null);
            return (attachedBefore == 0 ? SegmentState.Unattached : SegmentState.Attached, id, h);
        }
        finally
        {
            SysVShm.Detach(p);
        }
    }

    private static unsafe (SegmentState, long, MainHeader?) ClassifyPosix(long key, FileStat dataDir)
    {
        string name = PosixName(key);
        SafeFd? fd;
        try
        {
            fd = PosixShm.TryOpen(name, isFile: false, write: false);
        }
        catch (OsCallException e) when (e.Errno == Errno.EACCES)
        {
            return (SegmentState.Foreign, -1, null);
        }
        if (fd is null)
            return (SegmentState.Gone, -1, null);
        using (fd)
        {
            var st = FileStat.OfDescriptor(fd.Fd, name);
            if (st.Size < MainHeader.Size || st.Uid != Libc.geteuid())
                return (SegmentState.Foreign, (long)st.Inode, null);
            var region = PosixShm.Map(fd, name, MainHeader.Size, write: false);
            MainHeader h;
            try
            {
                h = region.Ref<MainHeader>(0);
            }
            finally
            {
                PosixShm.Unmap(region);
            }
            if (h.Magic != MainHeader.ExpectedMagic || h.DataDirDevice != dataDir.Device || h.DataDirInode != dataDir.Inode)
                return (SegmentState.Foreign, (long)st.Inode, null);
            bool attached = PosixShm.IsLockedByAnyone(fd, name);
            return (attached ? SegmentState.Attached : SegmentState.Unattached, (long)st.Inode, h);
        }
    }

    private static int RemoveExisting(SegmentKind kind, long key, long id) =>
        kind == SegmentKind.SysV ? SysVShm.Remove((int)id) : PosixShm.Unlink(PosixName(key), isFile: false);

    /// <summary>The FATAL for a segment that live processes still use, naming the pids that can be found.</summary>
    public static ShmemException InUse(MainSegmentSpec spec, long key, long id)
    {
        var marker = spec.Kind == SegmentKind.SysV ? AttachedProcesses.SysVMarker(key) : AttachedProcesses.PosixMarker(PosixName(key));
        var pids = AttachedProcesses.Find(marker);
        string? detail = pids.Count == 0 ? null
            : $"It is still attached by process{(pids.Count > 1 ? "es" : "")} {string.Join(", ", pids)}.";
        return new ShmemException($"pre-existing shared memory block (key {key}, ID {id}) is still in use", detail,
            $"Terminate any old server processes associated with data directory \"{spec.DataDir}\".");
    }

    private static long HugePageSize()
    {
        const long DefaultHugePage = 2 * 1024 * 1024;
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("Hugepagesize:", StringComparison.Ordinal))
                {
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[1]) * 1024;
                }
            }
        }
        catch (IOException)
        {
            // fall through to the default
        }
        return DefaultHugePage;
    }
}

/// <summary>A dead instance's main segment about to be removed: its header tells what else it left (DSM control).</summary>
internal readonly record struct MainSegmentOrphan(SegmentKind Kind, long Key, long Id, MainHeader Header);
