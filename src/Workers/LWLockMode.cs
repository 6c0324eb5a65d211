namespace Postmaster.Workers;

/// <summary>How a lightweight lock is held (PostgreSQL's LWLockMode). The values equal the engine's, which are
/// stored in shared memory.</summary>
public enum LWLockMode : byte
{
    /// <summary>Any number of shared holders at once, and no exclusive one. A waiting exclusive acquirer blocks new
    /// shared ones, so writers are not starved.</summary>
    Shared = 1,

    /// <summary>One holder and nobody else.</summary>
    Exclusive = 2,
}
