namespace Postmaster.Configuration;

/// <summary>
/// Where a value came from: the built-in default, a line of the configuration file, or a <c>-c</c> option.
/// Used for setting inspection and to place error messages. Immutable.
/// </summary>
public sealed record SettingSource
{
    private SettingSource(SettingSourceKind kind, string file, int line, string option)
    {
        Kind = kind;
        File = file;
        Line = line;
        Option = option;
    }

    /// <summary>The source of every built-in default.</summary>
    public static SettingSource Default { get; } = new(SettingSourceKind.Default, "", 0, "");

    public SettingSourceKind Kind { get; }

    /// <summary>Path of the configuration file; empty unless <see cref="Kind"/> is File.</summary>
    public string File { get; }

    /// <summary>1-based line number; 0 unless <see cref="Kind"/> is File.</summary>
    public int Line { get; }

    /// <summary>The option as given, e.g. <c>-c max_backends=50</c>; empty unless <see cref="Kind"/> is CommandLine.</summary>
    public string Option { get; }

    public static SettingSource FromFile(string file, int line) => new(SettingSourceKind.File, file, line, "");

    /// <summary>A <c>-c</c> option; <paramref name="assignment"/> is the <c>name=value</c> text after <c>-c</c>.</summary>
    public static SettingSource FromCommandLine(string assignment) =>
        new(SettingSourceKind.CommandLine, "", 0, "-c " + assignment);

    /// <summary>Location as a phrase after "in": <c>file "/x/postmaster.conf" line 3</c>,
    /// <c>command line option "-c a=b"</c>, or <c>default</c>.</summary>
    public string Location => Kind switch
    {
        SettingSourceKind.File => $"file \"{File}\" line {Line}",
        SettingSourceKind.CommandLine => $"command line option \"{Option}\"",
        SettingSourceKind.Default => "default",
        _ => throw new InvalidOperationException($"internal error: unknown setting source kind {Kind}"),
    };

    public override string ToString() => Location;
}
