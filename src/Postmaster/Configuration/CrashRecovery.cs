namespace Postmaster.Configuration;

/// <summary>Value of <c>crash_recovery</c>: what the supervisor does after a child crashed.
/// The member order matches the allowed values in <see cref="SettingCatalog"/>.</summary>
internal enum CrashRecovery
{
    /// <summary>Check shared state and restart only what the crash affected.</summary>
    Reconcile,

    /// <summary>Stop every child, reinitialise shared memory and start again (PostgreSQL's behaviour).</summary>
    RestartAll,
}
