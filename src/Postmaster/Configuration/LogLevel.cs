namespace Postmaster.Configuration;

/// <summary>
/// Value of <c>log_min_messages</c>: message severities in PostgreSQL's server-log order, least severe first.
/// As in PostgreSQL's server log, <see cref="Log"/> ranks above <see cref="Error"/> (and below <see cref="Fatal"/>),
/// so a message is written when its level compares greater than or equal to the configured one.
/// The member order matches the allowed values in <see cref="SettingCatalog"/>.
/// </summary>
public enum LogLevel
{
    Debug5,
    Debug4,
    Debug3,
    Debug2,
    Debug1,
    Info,
    Notice,
    Warning,
    Error,
    Log,
    Fatal,
    Panic,
}
