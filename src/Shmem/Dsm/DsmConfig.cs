using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// What every DSM participant (supervisor, backends, tools) must agree on: the implementation of OS-backed
/// segments, the data directory (mmap files live in its <see cref="DsmNames.DynShmemDirectoryName"/>) and the
/// instance tag that makes object names unique to the instance.
/// </summary>
internal sealed record DsmConfig(DsmType Type, string DataDirectory, DsmInstanceTag Tag)
{
    /// <summary>Names and keys of this instance's objects (precomputed, shared by every operation).</summary>
    internal DsmNames Names { get; } = new(Tag, DataDirectory);

    /// <summary>The configuration for data directory <paramref name="dataDirectory"/> whose stat is
    /// <paramref name="dataDirStat"/> (the tag comes from its device and inode).</summary>
    public static DsmConfig For(DsmType type, string dataDirectory, FileStat dataDirStat)
    {
        if (type is not (DsmType.Posix or DsmType.SysV or DsmType.Mmap))
            throw new ArgumentOutOfRangeException(nameof(type), type, "dynamic_shared_memory_type must be posix, sysv or mmap");
        return new DsmConfig(type, dataDirectory, DsmInstanceTag.From(dataDirStat));
    }

    /// <summary>DATADIR/pm_dynshmem: where mmap segments (and an mmap control segment) live.</summary>
    public string DynShmemDirectory => Names.DynShmemDirectory;
}
