namespace Postmaster.Configuration;

/// <summary>Value of <c>shared_memory_type</c>: how the main shared memory segment is created.
/// The member order matches the allowed values in <see cref="SettingCatalog"/>.</summary>
public enum SharedMemoryType
{
    SysV,
    Posix,
}
