using System.Globalization;
using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Dsm;

/// <summary>An OS object of this instance's dynamic shared memory, found by scanning.</summary>
/// <param name="Implementation">Posix, SysV or Mmap (a file in pm_dynshmem).</param>
/// <param name="Name">The POSIX name ("/pm.TAG.123"), the SysV key in decimal, or the file path.</param>
/// <param name="SysVId">The shmid for SysV, else -1.</param>
internal sealed record DsmOsObject(DsmImplementation Implementation, string Name, int SysVId);

/// <summary>
/// Startup cleanup of what a dead instance of the same data directory left (PostgreSQL's
/// dsm_cleanup_using_control_segment and dsm_cleanup_for_mmap), and more: PostgreSQL finds orphans only through the
/// old control segment, so they leak when that is gone (reboot, ipcrm, systemd RemoveIPC); here every object also
/// carries the instance tag (<see cref="DsmInstanceTag"/>), so a scan finds the rest.
/// <para><b>When.</b> Supervisor only, at startup, after the main segment's orphan check found the old instance dead
/// (or no old main segment at all) and BEFORE <see cref="DsmControl.Create"/>: the tag scan removes every unattached
/// object of the instance, which would include a running instance's pinned segments.</para>
/// <para>Order: (1) the old control segment named by the old main header is attached (whichever implementation it
/// was made with), validated, and every object it lists is destroyed, then the control segment itself; (2) the tag
/// scan: POSIX names in /dev/shm starting with "pm.TAG.", SysV segments of this user that nobody has attached and
/// whose <see cref="DsmSegmentHeader"/> carries the tag, and every file in DATADIR/pm_dynshmem (as PostgreSQL does
/// for mmap, whatever the table says: after a reboot it may be stale). Each removal is logged at DEBUG; failures at
/// LOG. Nothing here throws for what it finds.</para>
/// <para>A SysV segment whose creator died between shmget and writing its header carries no tag. A control segment
/// that lists it as Creating names its creator (checked against the kernel's shm_cpid); when no control segment
/// does, it is removed only with <see cref="DsmOrphanEvidence"/> proving its creator was a process of the dead
/// instance (<see cref="DsmOrphanEvidence.IsUnlabelledOrphan"/>); without evidence it is left alone.</para>
/// </summary>
internal static unsafe class DsmOrphanCleanup
{
    private const string DevShm = "/dev/shm";
    private const string SysVTable = "/proc/sysvipc/shm";

    /// <summary>Runs both steps and returns the counts (for one LOG line, <see cref="DsmCleanupSummary.Describe"/>).
    /// <paramref name="oldControlHandle"/> is the old main header's DsmControlHandle (Invalid when there was none).</summary>
    public static DsmCleanupSummary Run(DsmConfig config, DsmHandle oldControlHandle, IShmemLogger? log = null) =>
        Run(config, oldControlHandle, log, null);

    /// <summary>As <see cref="Run(DsmConfig, DsmHandle, IShmemLogger?)"/>; with <paramref name="evidence"/> (the dead
    /// instance's processes), SysV segments whose creator died before writing their header are removed too, when
    /// <see cref="DsmOrphanEvidence.IsUnlabelledOrphan"/> proves them the dead instance's.</summary>
    public static DsmCleanupSummary Run(DsmConfig config, DsmHandle oldControlHandle, IShmemLogger? log, DsmOrphanEvidence? evidence) =>
        Run(config, oldControlHandle.IsValid ? new[] { oldControlHandle } : Array.Empty<DsmHandle>(), log, evidence);

    /// <summary>Both steps for every old control segment in <paramref name="oldControlHandles"/> (one per dead main
    /// segment found: a previous run may have left one of each main segment type), then one tag scan.</summary>
    public static DsmCleanupSummary Run(DsmConfig config, IReadOnlyList<DsmHandle> oldControlHandles, IShmemLogger? log,
        DsmOrphanEvidence? evidence)
    {
        ArgumentNullException.ThrowIfNull(config);
        log ??= NullShmemLogger.Instance;
        bool found = false;
        bool corrupt = false;
        int listed = 0;
        int failures = 0;
        foreach (var handle in oldControlHandles.Where(h => h.IsValid).Distinct())
            CleanupUsingControlSegment(config, handle.Value, log, ref found, ref corrupt, ref listed, ref failures);
        var (untracked, scanFailures) = RemoveTagged(config, log, evidence);
        return new DsmCleanupSummary(found, corrupt, listed, untracked, failures + scanFailures);
    }

    /// <summary>Every object tagged with this instance that exists now, attached or not (POSIX names, SysV segments
    /// with our header, files in pm_dynshmem). For tests and diagnostics; read-only.</summary>
    public static IReadOnlyList<DsmOsObject> FindTagged(DsmConfig config) =>
        ScanTagged(config.Names, NullShmemLogger.Instance, includeAttached: true, evidence: null);

    /// <summary>The tag scan (step 2): removes everything <see cref="FindTagged"/> would list.</summary>
    internal static (int Removed, int Failures) RemoveTagged(DsmConfig config, IShmemLogger log, DsmOrphanEvidence? evidence = null)
    {
        var names = config.Names;
        int removed = 0;
        int failures = 0;
        foreach (var obj in ScanTagged(names, log, includeAttached: false, evidence))
        {
            int err;
            switch (obj.Implementation)
            {
                case DsmImplementation.Posix:
                    err = Libc.shm_unlink(obj.Name) == 0 ? 0 : Libc.Errno;
                    break;
                case DsmImplementation.SysV:
                    err = Libc.shmctl(obj.SysVId, Libc.IPC_RMID, (nint)0) == 0 ? 0 : Libc.Errno;
                    if (err is Errno.EINVAL or Errno.EIDRM)
                        err = Errno.ENOENT;
                    break;
                default:
                    err = Libc.unlink(obj.Name) == 0 ? 0 : Libc.Errno;
                    break;
            }
            if (err == 0)
            {
                removed++;
                log.Write(ShmemLogLevel.Debug, $"removed untracked dynamic shared memory object \"{obj.Name}\" ({obj.Implementation})");
            }
            else if (err != Errno.ENOENT)
            {
                failures++;
                log.Write(ShmemLogLevel.Log, obj.Implementation == DsmImplementation.Mmap
                    ? $"could not remove file \"{obj.Name}\": {Libc.StrError(err)}"
                    : $"could not remove shared memory segment \"{obj.Name}\": {Libc.StrError(err)}");
            }
        }
        return (removed, failures);
    }

    private static void CleanupUsingControlSegment(DsmConfig config, uint handle, IShmemLogger log,
        ref bool found, ref bool corrupt, ref int listed, ref int failures)
    {
        var names = config.Names;
        DsmImplementation impl = DsmImplementation.None;
        DsmMapping mapping = default;
        foreach (var candidate in new[] { (DsmImplementation)config.Type, DsmImplementation.Posix, DsmImplementation.SysV, DsmImplementation.Mmap })
        {
            try
            {
                if (DsmOs.TryAttach(names, candidate, DsmObjectKind.Control, handle, -1, out mapping))
                {
                    impl = candidate;
                    break;
                }
            }
            catch (Errors.ShmemException e)
            {
                log.Write(ShmemLogLevel.Debug, $"could not attach old dynamic shared memory control segment {handle} as {candidate}: {e.Message}");
            }
        }
        if (impl == DsmImplementation.None)
        {
            log.Write(ShmemLogLevel.Debug, $"old dynamic shared memory control segment {handle} is gone");
            return;
        }
        found = true;
        ref var header = ref mapping.Header;
        bool headerOurs = header.IsOurs(config.Tag, mapping.Size) && header.Kind == DsmObjectKind.Control && header.Handle == handle;
        if (!headerOurs && impl == DsmImplementation.SysV)
        {
            DsmOs.Detach(impl, mapping); // a foreign segment that happens to use the key: not ours to touch
            found = false;
            return;
        }
        string? problem = headerOurs
            ? DsmControlTable.Validate(mapping.Address + DsmSegmentHeader.Size, mapping.Size - DsmSegmentHeader.Size, config.Tag)
            : "Its object header does not name this instance's control segment.";
        if (problem is not null)
        {
            corrupt = true;
            log.Write(ShmemLogLevel.Log, $"old dynamic shared memory control segment {handle} is corrupt; orphans are found by instance tag instead");
            log.Write(ShmemLogLevel.Debug, problem);
        }
        else
        {
            DestroyListed(config, DsmControlTable.Attach(mapping.Address + DsmSegmentHeader.Size, mapping.Size - DsmSegmentHeader.Size, config.Tag),
                log, ref listed, ref failures);
        }
        DsmOs.Detach(impl, mapping);
        log.Write(ShmemLogLevel.Debug, $"cleaning up dynamic shared memory control segment with ID {handle}");
        int err = DsmOs.Destroy(names, impl, DsmObjectKind.Control, handle, mapping.SysVId);
        if (err == 0)
            listed++;
        else if (err != Errno.ENOENT)
        {
            failures++;
            log.Write(ShmemLogLevel.Log,
                $"could not remove shared memory segment \"{names.Describe(impl, DsmObjectKind.Control, handle)}\": {Libc.StrError(err)}");
        }
    }

    private static void DestroyListed(DsmConfig config, DsmControlTable table, IShmemLogger log, ref int listed, ref int failures)
    {
        var names = config.Names;
        int count = table.Header.ItemCount;
        for (int i = 0; i < count; i++)
        {
            var item = table.Item(i); // a copy
            if (item.State == DsmItemState.Free && item.RefCount == 0)
                continue;
            if (item.Implementation is not (DsmImplementation.Posix or DsmImplementation.SysV or DsmImplementation.Mmap))
                continue; // main-region segments went away with the old main segment
            log.Write(ShmemLogLevel.Debug,
                $"cleaning up orphaned dynamic shared memory with ID {item.Handle} (reference count {item.RefCount})");
            // SysV ids from a previous run are not trusted (the kernel reuses them): look the key up and check.
            int creator = item.State == DsmItemState.Creating ? item.OwnerPid : 0;
            int err = DsmOs.Destroy(names, item.Implementation, DsmObjectKind.Segment, item.Handle, -1, creator);
            if (err == 0)
                listed++;
            else if (err != Errno.ENOENT)
            {
                failures++;
                log.Write(ShmemLogLevel.Log,
                    $"could not remove shared memory segment \"{names.Describe(item.Implementation, DsmObjectKind.Segment, item.Handle)}\": {Libc.StrError(err)}");
            }
        }
    }

    /// <summary>The tag scan. SysV segments that some process has attached are listed only with
    /// <paramref name="includeAttached"/> (POSIX names and files cannot tell, and are always listed).</summary>
    private static List<DsmOsObject> ScanTagged(DsmNames names, IShmemLogger log, bool includeAttached, DsmOrphanEvidence? evidence)
    {
        var found = new List<DsmOsObject>();
        try
        {
            foreach (var path in Directory.EnumerateFiles(DevShm, names.PosixFilePrefix + "*"))
                found.Add(new DsmOsObject(DsmImplementation.Posix, "/" + Path.GetFileName(path), -1));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Write(ShmemLogLevel.Log, $"could not scan {DevShm} for orphaned dynamic shared memory: {e.Message}");
        }
        foreach (var (id, key) in SysVSegmentsOfThisUser(log, includeAttached))
        {
            var probe = DsmOs.ProbeSysV(id, names.Tag, out var header, out int actualKey, out var info);
            if ((probe == DsmOs.SysVProbe.OursUnattached || (includeAttached && probe == DsmOs.SysVProbe.OursAttached)) &&
                actualKey == key && key == names.SysVKey(header.Kind, header.Handle))
                found.Add(new DsmOsObject(DsmImplementation.SysV, ((uint)key).ToString(CultureInfo.InvariantCulture), id));
            else if (probe == DsmOs.SysVProbe.UnlabelledUnattached && actualKey == key && evidence is not null &&
                     evidence.IsUnlabelledOrphan(info))
            {
                log.Write(ShmemLogLevel.Debug, $"SysV segment with key {(uint)key} (ID {id}) has no header; its creator, PID " +
                                               $"{info.CreatorPid}, was a process of the dead instance and died before labelling it");
                found.Add(new DsmOsObject(DsmImplementation.SysV, ((uint)key).ToString(CultureInfo.InvariantCulture), id));
            }
        }
        try
        {
            if (Directory.Exists(names.DynShmemDirectory))
                foreach (var path in Directory.EnumerateFiles(names.DynShmemDirectory))
                    found.Add(new DsmOsObject(DsmImplementation.Mmap, path, -1));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Write(ShmemLogLevel.Log, $"could not scan \"{names.DynShmemDirectory}\" for orphaned dynamic shared memory: {e.Message}");
        }
        return found;
    }

    /// <summary>(shmid, key) of every SysV segment of this user (with no process attached unless
    /// <paramref name="includeAttached"/>), from /proc/sysvipc/shm (columns: key shmid perms size cpid lpid nattch uid ...).</summary>
    private static List<(int Id, int Key)> SysVSegmentsOfThisUser(IShmemLogger log, bool includeAttached)
    {
        var result = new List<(int, int)>();
        uint uid = Libc.geteuid();
        try
        {
            foreach (var line in File.ReadLines(SysVTable).Skip(1))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length > 7 && int.TryParse(f[0], CultureInfo.InvariantCulture, out int key) &&
                    int.TryParse(f[1], CultureInfo.InvariantCulture, out int id) &&
                    long.TryParse(f[6], CultureInfo.InvariantCulture, out long attached) && (attached == 0 || includeAttached) &&
                    uint.TryParse(f[7], CultureInfo.InvariantCulture, out uint owner) && owner == uid)
                    result.Add((id, key));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Write(ShmemLogLevel.Log, $"could not read {SysVTable}: {e.Message}");
        }
        return result;
    }
}
