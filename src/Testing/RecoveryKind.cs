namespace Postmaster.Testing;

/// <summary>How the server recovered from a backend crash (<see cref="PostmasterCluster.WaitForRecovery"/>).</summary>
public enum RecoveryKind
{
    /// <summary>Only what the dead backend held was repaired; every other backend kept running.</summary>
    Reconcile = 0,

    /// <summary>Every backend was ended and shared memory rebuilt (PostgreSQL's crash restart).</summary>
    FullRestart = 1,
}
