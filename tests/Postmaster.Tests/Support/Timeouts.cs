namespace Postmaster.Tests.Support;

/// <summary>The one global bound for every wait in the tests (PostgreSQL's timeout_default).
/// Override with POSTMASTER_TEST_TIMEOUT (seconds).</summary>
public static class Timeouts
{
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(
        int.TryParse(Environment.GetEnvironmentVariable("POSTMASTER_TEST_TIMEOUT"), out int s) && s > 0 ? s : 60);
}
