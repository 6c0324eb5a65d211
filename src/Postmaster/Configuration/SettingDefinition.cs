namespace Postmaster.Configuration;

/// <summary>
/// The static description of one configuration setting: its name, type, default, limits, and when a change takes effect.
/// Instances live in <see cref="SettingCatalog"/> (fixed names) and <see cref="WorkerSettingCatalog"/> (the
/// <c>worker.NAME.*</c> family, whose <see cref="Name"/> is a template containing <c>NAME</c>). Immutable.
/// </summary>
public sealed class SettingDefinition
{
    /// <summary>Lower-case name, e.g. <c>max_backends</c> or the template <c>worker.NAME.count</c>.</summary>
    public required string Name { get; init; }

    public required SettingKind Kind { get; init; }

    /// <summary>
    /// Default in configuration-file syntax (unquoted, e.g. <c>8MB</c>, <c>5s</c>, <c>log</c>), parsed by the same rules as
    /// a value in the file; <see langword="null"/> when the setting has no default and must be given
    /// (<c>worker.NAME.entry</c>).
    /// </summary>
    public required string? DefaultText { get; init; }

    /// <summary>Smallest allowed value in the base unit (bytes, milliseconds); only for Int, Size and Time.</summary>
    public long Min { get; init; }

    /// <summary>Largest allowed value in the base unit (bytes, milliseconds); only for Int, Size and Time.</summary>
    public long Max { get; init; }

    /// <summary>Allowed words of an Enum setting, in the order of the matching C# enum members.</summary>
    public IReadOnlyList<string> AllowedValues { get; init; } = [];

    /// <summary>Longest value of a String setting in UTF-8 bytes; 0 = no limit.</summary>
    public int MaxBytes { get; init; }

    /// <summary>For a String setting: checks a value, returning why it is invalid (the hint of the error placed at the
    /// value's file:line), or null when it is valid.</summary>
    public Func<string, string?>? Validate { get; init; }

    /// <summary>Whether a String setting may be the empty string.</summary>
    public bool AllowEmpty { get; init; } = true;

    public required SettingContext Context { get; init; }

    public required SettingGroup Group { get; init; }

    /// <summary>One line, shown in the default configuration file.</summary>
    public required string Description { get; init; }

    /// <summary>Longer explanation for the documentation; may be empty.</summary>
    public string Documentation { get; init; } = "";

    /// <summary>"B" for sizes, "ms" for times, otherwise <see langword="null"/>.</summary>
    public string? BaseUnit => Kind switch
    {
        SettingKind.Size => SettingUnits.SizeBaseUnit,
        SettingKind.Time => SettingUnits.TimeBaseUnit,
        _ => null,
    };

    /// <summary>Whether the setting is a number with <see cref="Min"/> and <see cref="Max"/>.</summary>
    public bool IsNumeric => Kind is SettingKind.Int or SettingKind.Size or SettingKind.Time;

    /// <summary>Whether a value is required (there is no default).</summary>
    public bool IsRequired => DefaultText is null;

    public override string ToString() => Name;
}
