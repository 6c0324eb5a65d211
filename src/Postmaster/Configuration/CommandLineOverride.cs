using System.Diagnostics.CodeAnalysis;

namespace Postmaster.Configuration;

/// <summary>
/// Reads the text of a <c>-c name=value</c> command line option (the <c>name=value</c> part). The name is trimmed and
/// made lower case; the value is everything after the first <c>=</c>, taken literally: no quotes or escapes are
/// processed, because the shell has already done that (as in PostgreSQL).
/// </summary>
internal static class CommandLineOverride
{
    private const char Assign = '=';
    private const string Hint = "Use -c name=value.";

    public static bool TryParse(string assignment, [NotNullWhen(true)] out ConfigEntry? entry,
        [NotNullWhen(false)] out ConfigError? error)
    {
        SettingSource source = SettingSource.FromCommandLine(assignment);
        int separator = assignment.IndexOf(Assign);
        string name = (separator < 0 ? assignment : assignment[..separator]).Trim().ToLowerInvariant();
        if (name.Length == 0)
        {
            entry = null;
            error = ConfigError.At(source, $"syntax error in {source.Location}, missing parameter name", Hint);
            return false;
        }

        if (separator < 0)
        {
            entry = null;
            error = ConfigError.At(source, $"missing value for parameter \"{name}\" in {source.Location}", Hint);
            return false;
        }

        entry = new ConfigEntry(name, assignment[(separator + 1)..], source);
        error = null;
        return true;
    }
}
