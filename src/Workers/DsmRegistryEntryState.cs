namespace Postmaster.Workers;

/// <summary>Where a name of the DSM registry stands (<see cref="DsmRegistryEntryInfo.State"/>). The values equal the
/// engine's, which are stored in shared memory.</summary>
public enum DsmRegistryEntryState
{
    /// <summary>The entry is unused.</summary>
    Free = 0,

    /// <summary>A process is creating the segment and running the initialiser; callers of the name wait.</summary>
    Initialising = 1,

    /// <summary>Initialised and published: callers attach it (found = true).</summary>
    Ready = 2,

    /// <summary>The last initialisation threw; the next caller initialises again.</summary>
    Failed = 3,

    /// <summary>A process is releasing the name; callers wait, then create it anew.</summary>
    Releasing = 4,
}
