namespace Postmaster.Shmem.Dsm;

/// <summary>What <see cref="DsmControl.DestroyAll"/> did (shutdown or full restart).</summary>
/// <param name="ControlCorrupt">The control segment failed validation ("dynamic shared memory control segment is
/// corrupt"); segments were then found by the instance tag instead.</param>
/// <param name="SegmentsRemoved">OS objects removed (main-region segments need no removal).</param>
/// <param name="Failures">Objects that could not be removed (each logged).</param>
internal readonly record struct DsmShutdownSummary(bool ControlCorrupt, int SegmentsRemoved, int Failures);

/// <summary>Outcome of <see cref="DsmControl.ReconcileSlot"/> and <see cref="DsmControl.FinishAbandoned"/>.</summary>
internal enum DsmReconcileStatus
{
    /// <summary>Done: the counts say what changed.</summary>
    Done,

    /// <summary>The DsmControl lock stayed busy for the whole timeout; nothing changed. Retry later (or, if its
    /// holder is dead, restart everything).</summary>
    LockTimeout,

    /// <summary>The dead process held (or was acquiring) the DsmControl lock, so the table may be half-updated and its
    /// records cannot be trusted: nothing changed; the supervisor must do a full restart.</summary>
    DiedHoldingLock,
}

/// <param name="ReferencesDropped">References of the dead process given back (one per attached segment).</param>
/// <param name="SegmentsDestroyed">Segments destroyed because no reference was left, including abandoned ones.</param>
/// <param name="AbandonedFinished">Items found Creating or Destroying with a dead owner, and finished off.</param>
/// <param name="Failures">OS objects that could not be removed (logged; their items stay moribund for a later pass).</param>
internal readonly record struct DsmReconcileResult(DsmReconcileStatus Status, int ReferencesDropped, int SegmentsDestroyed,
    int AbandonedFinished, int Failures);

/// <summary>What startup orphan cleanup (<see cref="DsmOrphanCleanup.Run"/>) found and removed.</summary>
/// <param name="ControlSegmentFound">The old control segment still existed.</param>
/// <param name="ControlSegmentCorrupt">It existed but failed validation (its list was not used).</param>
/// <param name="ListedRemoved">Objects removed because the old control segment listed them (the control segment included).</param>
/// <param name="UntrackedRemoved">Objects tagged with this instance that no table listed (POSIX names, SysV
/// segments whose header carries the tag, files in pm_dynshmem).</param>
/// <param name="Failures">Objects that could not be removed (each logged).</param>
internal readonly record struct DsmCleanupSummary(bool ControlSegmentFound, bool ControlSegmentCorrupt, int ListedRemoved,
    int UntrackedRemoved, int Failures)
{
    /// <summary>The one-line LOG message.</summary>
    public string Describe() =>
        $"removed {ListedRemoved + UntrackedRemoved} orphaned dynamic shared memory objects " +
        $"({ListedRemoved} listed by the old control segment{(ControlSegmentCorrupt ? ", which was corrupt" : ControlSegmentFound ? "" : ", which was gone")}, " +
        $"{UntrackedRemoved} found by instance tag){(Failures > 0 ? $"; {Failures} could not be removed" : "")}";
}
