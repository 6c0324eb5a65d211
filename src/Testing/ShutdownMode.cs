namespace Postmaster.Testing;

/// <summary>The shutdown modes of <c>postmaster stop -m</c>.</summary>
public enum ShutdownMode
{
    /// <summary>SIGTERM: waits until dynamic workers have finished, then stops the rest.</summary>
    Smart = 0,

    /// <summary>SIGINT: stops every backend at once (the default).</summary>
    Fast = 1,

    /// <summary>SIGQUIT: backends exit without running their exit paths.</summary>
    Immediate = 2,
}
