namespace Postmaster.Workers;

/// <summary>A started dynamic worker: its pid, and its slot with the generation it was started in (the slot is
/// reused later; the generation tells the two apart).</summary>
public readonly record struct DynamicWorkerHandle(int Pid, int Slot, long Generation);
