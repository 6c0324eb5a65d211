namespace Postmaster.Configuration;

/// <summary>
/// The section a setting belongs to in the default configuration file and in the documentation.
/// The declaration order is the order of the sections.
/// </summary>
public enum SettingGroup
{
    SharedMemory,
    DynamicSharedMemory,
    Backends,
    Connections,
    Logging,
    ShutdownAndCrashRecovery,
    Workers,
}
