namespace Postmaster.Shmem.Locks;

/// <summary>One owner-record entry as the inspector reports it.</summary>
/// <param name="Slot">The owner slot whose record lists the lock.</param>
/// <param name="Pid">The pid recorded for that slot (0 if the slot was freed meanwhile).</param>
/// <param name="IsAlive">Whether that pid is a live, non-zombie process when inspected.</param>
internal readonly record struct LWLockHolding(
    int Slot, int Pid, bool IsAlive, LWLockId Lock, int TrancheId, string TrancheName, LWLockMode Mode, HeldLockPhase Phase);
