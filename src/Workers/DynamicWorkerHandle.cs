namespace Postmaster.Workers;

/// <summary>A started dynamic worker (<see cref="WorkerContext.StartDynamicWorker"/>): its pid, and its slot with the
/// generation it was started in (the slot is reused later; the generation tells the two apart).</summary>
/// <param name="Pid">The worker's process id.</param>
/// <param name="Slot">The backend slot the worker runs in.</param>
/// <param name="Generation">The slot's generation when the worker was started.</param>
public readonly record struct DynamicWorkerHandle(int Pid, int Slot, long Generation);
