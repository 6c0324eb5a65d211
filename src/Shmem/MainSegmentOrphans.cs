using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Layout;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.Shmem;

/// <summary>Where a previous instance recorded its main segment (postmaster.pid lines 7 and 9), when known.</summary>
internal readonly record struct RecordedSegment(SegmentKind Kind, long Key);

/// <summary>What <see cref="MainSegmentOrphans.RemoveAll"/> did.</summary>
/// <param name="Removed">Main segments of a dead instance of this data directory that were removed.</param>
/// <param name="Evidence">The dead instance's processes, read from what was removed (for DSM orphan cleanup).</param>
internal sealed record MainSegmentCleanup(int Removed, DsmOrphanEvidence Evidence);

/// <summary>
/// Finds and removes the main segments a dead instance of this data directory left, whatever kind it used: a
/// previous run may have had another <c>shared_memory_type</c> than the current configuration. Candidates are the
/// segment the stale lock file records (if any) and, for SysV and POSIX alike, every key of the run the key probing
/// of <see cref="MainSegment.Create"/> walks: from the data directory's first key up to the first key where nothing
/// exists (a creator stops there, so its segment is in the run). Each candidate is classified as
/// <see cref="MainSegment.Classify"/> does: only a segment whose header carries this data directory's device and inode
/// (and, for SysV, that IPC_STAT shows as this user's before it is attached) is ours; foreign ones are never touched.
/// Ours and unattached: removed after its header and, when readable, its slots were read for evidence; ours and
/// attached: <see cref="MainSegment.InUse"/> is thrown. Runs at start (before the new segment is created) and in
/// <c>postmaster cleanup</c>.
/// </summary>
internal static class MainSegmentOrphans
{
    private static readonly SegmentKind[] s_kinds = { SegmentKind.SysV, SegmentKind.Posix };

    /// <summary>Every candidate of this data directory that exists now, classified; read-only.</summary>
    public static IReadOnlyList<(SegmentKind Kind, long Key, SegmentState State, long Id, MainHeader? Header)> Find(
        FileStat dataDir, RecordedSegment? recorded = null)
    {
        var seen = new HashSet<(SegmentKind, long)>();
        var found = new List<(SegmentKind, long, SegmentState, long, MainHeader?)>();
        void Consider(SegmentKind kind, long key)
        {
            if (key <= 0 || !seen.Add((kind, key)))
                return;
            var (state, id, header) = MainSegment.Classify(kind, key, dataDir);
            found.Add((kind, key, state, id, header));
        }
        if (recorded is { } r && Exists(r.Kind, r.Key))
            Consider(r.Kind, r.Key);
        foreach (var kind in s_kinds)
        {
            long key = MainSegment.InitialKey(dataDir.Inode);
            for (int probe = 0; probe < MainSegment.MaxKeyProbes && Exists(kind, key); probe++)
            {
                Consider(kind, key);
                key = MainSegment.NextKey(key);
            }
        }
        return found;
    }

    /// <summary>
    /// Removes every main segment of a dead instance of this data directory (see the type's summary), handing each
    /// header to <paramref name="onOrphan"/> first (it names the old DSM control segment). Throws the FATAL
    /// <see cref="MainSegment.InUse"/> error for one that processes still have attached (or that could not be
    /// analysed: be conservative), before removing anything.
    /// </summary>
    public static MainSegmentCleanup RemoveAll(string dataDirPath, FileStat dataDir, RecordedSegment? recorded, IShmemLogger log,
        Action<MainSegmentOrphan>? onOrphan = null, DsmOrphanEvidence? evidence = null)
    {
        evidence ??= new DsmOrphanEvidence();
        var candidates = Find(dataDir, recorded);
        foreach (var (kind, key, state, id, _) in candidates)
            if (state is SegmentState.Attached or SegmentState.AnalysisFailure)
                throw MainSegment.InUse(new MainSegmentSpec(kind, dataDirPath, dataDir, HugePagesMode.Off), key, id);
        int removed = 0;
        foreach (var (kind, key, state, id, header) in candidates)
        {
            if (state != SegmentState.Unattached || header is not { } h)
                continue;
            CollectEvidence(kind, key, id, dataDir, h, evidence);
            if (MainSegment.RemoveOrphan(kind, key, id, h, log, onOrphan))
                removed++;
        }
        return new MainSegmentCleanup(removed, evidence);
    }

    /// <summary>The dead instance's processes as its main segment records them: its creator (the postmaster) since
    /// the segment's creation, every pid in a backend slot since the slot's assignment, every lock owner record's pid
    /// since the segment's creation. Best effort: a segment that fails validation yields the header's creator only.</summary>
    public static void CollectEvidence(SegmentKind kind, long key, long id, FileStat dataDir, MainHeader header, DsmOrphanEvidence evidence)
    {
        long created = header.CreatedAtUnixMs / 1000;
        evidence.Add(header.CreatorPid, created);
        InstanceShmem? shmem = null;
        try
        {
            shmem = InstanceShmem.Attach(kind, key, id, dataDir);
            CollectEvidence(shmem, evidence);
        }
        catch (ShmemException)
        {
            // the header's creator is all the evidence this segment gives
        }
        finally
        {
            shmem?.Dispose();
        }
    }

    /// <summary>The processes an attached main segment records (see <see cref="CollectEvidence(SegmentKind, long, long,
    /// FileStat, MainHeader, DsmOrphanEvidence)"/>); nothing when it fails validation. Never throws.</summary>
    public static void CollectEvidence(InstanceShmem shmem, DsmOrphanEvidence evidence)
    {
        if (shmem.Validate() is not null)
            return;
        var header = shmem.Main.Header;
        long created = header.CreatedAtUnixMs / 1000;
        evidence.Add(header.CreatorPid, created);
        for (int slot = 0; slot < shmem.Slots.Count; slot++)
        {
            var info = shmem.Slots.Read(slot);
            if (info.State != Backends.BackendSlotState.Unused && info.Pid > 0)
                evidence.Add(info.Pid, Math.Max(created, info.StartedAtUnixMs / 1000));
        }
        for (int slot = 0; slot < shmem.Owners.SlotCount; slot++)
            evidence.Add(shmem.Owners.RecordedPid(slot), created);
    }

    /// <summary>Whether anything exists at (kind, key): SysV shmget finds the key (or it is someone's we may not
    /// see), POSIX /dev/shm has the name.</summary>
    private static bool Exists(SegmentKind kind, long key)
    {
        if (kind == SegmentKind.SysV)
            return SysVShm.Lookup((int)key, out int errno) >= 0 || errno != Errno.ENOENT;
        return File.Exists("/dev/shm" + MainSegment.PosixName(key));
    }
}
