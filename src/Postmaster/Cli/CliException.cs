namespace Postmaster.Cli;

/// <summary>A command failed for a reason already put into words: printed as "postmaster: message" (plus DETAIL and
/// HINT) by <see cref="CliBoundary"/>, which exits with <see cref="ExitCode"/>.</summary>
public sealed class CliException(string message, int exitCode = ExitCodes.Failure, string? detail = null, string? hint = null)
    : Exception(message)
{
    public int ExitCode { get; } = exitCode;
    public string? Detail { get; } = detail;
    public string? Hint { get; } = hint;
}
