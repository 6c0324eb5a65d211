namespace Postmaster.Configuration;

/// <summary>
/// One problem found in the configuration. <see cref="Message"/> is complete on its own: it names the place, the
/// parameter, the bad value and, with <see cref="Hint"/>, what would be accepted.
/// </summary>
/// <param name="File">The configuration file path; for an error in a <c>-c</c> option, the option text
/// (<c>-c name=value</c>).</param>
/// <param name="Line">1-based line number in <paramref name="File"/>; 0 when the error is not tied to a line of the file
/// (a <c>-c</c> option, or a file that could not be read).</param>
/// <param name="Message">PostgreSQL-style message, e.g. <c>invalid value for parameter "huge_pages": "maybe" (file "/x"
/// line 5)</c>.</param>
/// <param name="Hint">Optional advice, e.g. <c>Available values: off, try, on.</c></param>
public sealed record ConfigError(string File, int Line, string Message, string? Hint)
{
    /// <summary>The <see cref="Line"/> of errors that have no line.</summary>
    public const int NoLine = 0;

    /// <summary>An error placed at <paramref name="source"/>: a file line, a <c>-c</c> option, or (only when a built-in
    /// default is broken, which the catalogue tests rule out) no place at all.</summary>
    public static ConfigError At(SettingSource source, string message, string? hint = null) => source.Kind switch
    {
        SettingSourceKind.File => new ConfigError(source.File, source.Line, message, hint),
        SettingSourceKind.CommandLine => new ConfigError(source.Option, NoLine, message, hint),
        SettingSourceKind.Default => new ConfigError("", NoLine, message, hint),
        _ => throw new ArgumentOutOfRangeException(nameof(source), source.Kind, "internal error: unknown setting source kind"),
    };

    /// <summary>The message followed, when there is one, by a line <c>HINT:  hint</c>.</summary>
    public override string ToString() => Hint is null ? Message : $"{Message}{Environment.NewLine}HINT:  {Hint}";
}
