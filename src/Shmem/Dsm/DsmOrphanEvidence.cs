using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// The processes a dead instance of this data directory provably had, each with the earliest time (Unix seconds) it
/// was the instance's: its postmaster (from the stale lock file and the old main header, since the instance started)
/// and its backends (the pids recorded in the old main segment's backend slots, since their slot was assigned, and in
/// its lock owner records, since the segment was created). It is the proof that lets orphan cleanup remove a SysV DSM
/// segment whose creator died between shmget and writing the segment's header, when no control segment lists it
/// (see <see cref="IsUnlabelledOrphan"/>). Empty evidence proves nothing: such segments are then left alone.
/// </summary>
internal sealed class DsmOrphanEvidence
{
    /// <summary>The kernel records shm_ctime in whole seconds; a recorded "since" may be up to this much later.</summary>
    private const long ClockGraceSeconds = 1;

    private readonly Dictionary<int, long> _since = new();

    /// <summary>No evidence.</summary>
    public static DsmOrphanEvidence None => new();

    /// <summary>Pids recorded so far.</summary>
    public IReadOnlyCollection<int> Pids => _since.Keys;

    /// <summary>Records that <paramref name="pid"/> was a process of the dead instance from
    /// <paramref name="sinceUnixSeconds"/> until the instance died. Non-positive pids are ignored.</summary>
    public void Add(int pid, long sinceUnixSeconds)
    {
        if (pid <= 0)
            return;
        _since[pid] = _since.TryGetValue(pid, out long known) ? Math.Min(known, sinceUnixSeconds) : sinceUnixSeconds;
    }

    /// <summary>
    /// Whether SysV segment <paramref name="info"/>, whose first bytes are all zero (no header was ever written), is
    /// provably an unlabelled orphan of the dead instance. All of these must hold:
    /// <list type="number">
    /// <item>it is this user's and mode 0600 exactly, as DSM creates it (<see cref="SysVShm.IsOwnedByUs"/>, checked
    /// from IPC_STAT before any attach);</item>
    /// <item>no process has it attached now (shm_nattch 0), and its first bytes, where every creator of this code
    /// writes the header right after shmat, are still zero (the caller checked; shm_lpid cannot be used as proof:
    /// the read-only attach of that very check, by this or an earlier cleanup, changes it);</item>
    /// <item>its creator (shm_cpid, recorded by the kernel at shmget, which no process can forge) is one of the dead
    /// instance's processes, the segment was created (shm_ctime) while that pid was the instance's, and the pid is
    /// not alive now (the kernel reuses a pid only after its process is gone, so while it was recorded as ours,
    /// nobody else could have created segments under it).</item>
    /// </list>
    /// </summary>
    public bool IsUnlabelledOrphan(in SysVSegmentInfo info) =>
        SysVShm.IsOwnedByUs(info) && info.Permissions == DsmOs.ObjectMode &&
        info.AttachCount == 0 &&
        info.CreatorPid > 0 && _since.TryGetValue(info.CreatorPid, out long since) &&
        info.ChangeTime >= since - ClockGraceSeconds && !ProcessControl.IsAlive(info.CreatorPid);
}
