namespace Postmaster.Shmem.Dsm;

/// <summary>How OS-backed dynamic shared memory segments are made (<c>dynamic_shared_memory_type</c>). The values
/// equal the matching <see cref="DsmImplementation"/> members.</summary>
internal enum DsmType
{
    /// <summary>shm_open under /dev/shm, named "/pm.TAG.HANDLE".</summary>
    Posix = 1,

    /// <summary>shmget with a key derived from the instance tag and the handle.</summary>
    SysV = 2,

    /// <summary>Files DATADIR/pm_dynshmem/dsm.HANDLE, mapped shared.</summary>
    Mmap = 3,
}

/// <summary>Where one segment's memory comes from, as the control segment records it. Stored in shared memory:
/// explicit byte values.</summary>
internal enum DsmImplementation : byte
{
    None = 0,
    Posix = DsmType.Posix,
    SysV = DsmType.SysV,
    Mmap = DsmType.Mmap,

    /// <summary>Pages of the main segment's "Preallocated DSM" region: no OS object, no system call.</summary>
    MainRegion = 4,
}

/// <summary>The life of one control-segment item. Stored in shared memory: explicit byte values.</summary>
internal enum DsmItemState : byte
{
    /// <summary>Unused; on the free list. Reference count 0.</summary>
    Free = 0,

    /// <summary>Reserved by a creator (owner fields) that is making the OS object. Not attachable yet. If the
    /// creator dies, the supervisor removes the object (if it got that far) and frees the item.</summary>
    Creating = 1,

    /// <summary>Attachable. Reference count 2 or more.</summary>
    Live = 2,

    /// <summary>Moribund: the last reference is gone (reference count 1) and the owner is removing the OS object.
    /// If the owner dies or fails, the supervisor finishes the job.</summary>
    Destroying = 3,
}

/// <summary>Options of <see cref="DsmSession.Create"/>.</summary>
[Flags]
internal enum DsmCreateFlags
{
    None = 0,

    /// <summary>Return null instead of throwing when the control segment has no free item
    /// (PostgreSQL's DSM_CREATE_NULL_IF_MAXSEGMENTS).</summary>
    NullIfMaxSegments = 1,

    /// <summary>Guarantee zeroed contents. OS-backed segments are always zero; main-region pages are recycled and
    /// are cleared only with this flag (a memset of the whole segment).</summary>
    Zeroed = 2,
}
