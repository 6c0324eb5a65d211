namespace Postmaster.Testing;

/// <summary>A backend's state (<c>status</c>'s <c>backends[].state</c>).</summary>
public enum BackendState
{
    /// <summary>A state this version of the harness does not know.</summary>
    Unknown = 0,

    /// <summary>Started, not attached yet (<c>"starting"</c>).</summary>
    Starting = 1,

    /// <summary>Attached and running its worker (<c>"running"</c>).</summary>
    Running = 2,

    /// <summary>A pool member parked until a request hands it work (<c>"idle (pool)"</c>).</summary>
    Idle = 3,
}
