namespace Postmaster.Configuration;

/// <summary>Value of <c>dynamic_shared_memory_type</c>: how dynamic shared memory (DSM) segments are created.
/// The member order matches the allowed values in <see cref="SettingCatalog"/>.</summary>
public enum DynamicSharedMemoryType
{
    Posix,
    SysV,
    Mmap,
}
