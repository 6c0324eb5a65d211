namespace Postmaster.Shmem.Backends;

/// <summary>A backend slot's life (PostgreSQL's PMChildFlags: the dead-man switch).</summary>
internal enum BackendSlotState
{
    /// <summary>Free.</summary>
    Unused = 0,

    /// <summary>Reserved by the postmaster for a process it is starting, or released by a backend that ran its whole
    /// exit path. A child that exits while its slot is still <see cref="Active"/> did not clean up: a crash.</summary>
    Assigned = 1,

    /// <summary>The backend attached shared memory and runs.</summary>
    Active = 2,
}
