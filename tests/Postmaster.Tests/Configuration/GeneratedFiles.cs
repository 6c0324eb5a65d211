namespace Postmaster.Tests.Configuration;

/// <summary>
/// Repository files generated from code (config/postmaster.conf, the settings reference in docs/configuration.md) are
/// checked by tests. Running the tests with <see cref="UpdateVariable"/>=1 rewrites them instead of failing.
/// </summary>
internal static class GeneratedFiles
{
    public const string UpdateVariable = "POSTMASTER_UPDATE_GENERATED";

    public static bool UpdateRequested => Environment.GetEnvironmentVariable(UpdateVariable) == "1";
}
