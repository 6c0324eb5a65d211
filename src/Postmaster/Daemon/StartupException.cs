namespace Postmaster.Daemon;

/// <summary>A FATAL condition that stops startup: message, optional DETAIL and HINT, as PostgreSQL reports it.</summary>
public sealed class StartupException(string message, string? detail = null, string? hint = null) : Exception(message)
{
    public string? Detail { get; } = detail;
    public string? Hint { get; } = hint;
}
