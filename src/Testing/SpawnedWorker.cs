namespace Postmaster.Testing;

/// <summary>A dynamic worker started by <see cref="PostmasterCluster.Spawn"/>: running when this is returned.</summary>
/// <param name="Pid">Its process.</param>
/// <param name="Slot">Its backend slot.</param>
public sealed record SpawnedWorker(int Pid, int Slot);
