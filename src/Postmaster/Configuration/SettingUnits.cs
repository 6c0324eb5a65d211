namespace Postmaster.Configuration;

/// <summary>
/// Unit constants and the unit tables of <see cref="SettingKind.Size"/> and <see cref="SettingKind.Time"/> settings.
/// Unit names are case-sensitive, as in PostgreSQL ("kB", not "KB"). Sizes use powers of 1024.
/// </summary>
public static class SettingUnits
{
    public const long Byte = 1;
    public const long Kilobyte = 1024 * Byte;
    public const long Megabyte = 1024 * Kilobyte;
    public const long Gigabyte = 1024 * Megabyte;
    public const long Terabyte = 1024 * Gigabyte;

    public const long Millisecond = 1;
    public const long Second = 1000 * Millisecond;
    public const long Minute = 60 * Second;
    public const long Hour = 60 * Minute;
    public const long Day = 24 * Hour;

    /// <summary>One microsecond in milliseconds, the base unit of time settings.</summary>
    public const decimal Microsecond = 0.001m;

    /// <summary>Base unit of size settings, shown in documentation.</summary>
    public const string SizeBaseUnit = "B";

    /// <summary>Base unit of time settings, shown in documentation.</summary>
    public const string TimeBaseUnit = "ms";

    /// <summary>Size units, smallest first.</summary>
    public static IReadOnlyList<SettingUnit> SizeUnits { get; } =
    [
        new("B", Byte),
        new("kB", Kilobyte),
        new("MB", Megabyte),
        new("GB", Gigabyte),
        new("TB", Terabyte),
    ];

    /// <summary>Time units, smallest first.</summary>
    public static IReadOnlyList<SettingUnit> TimeUnits { get; } =
    [
        new("us", Microsecond),
        new("ms", Millisecond),
        new("s", Second),
        new("min", Minute),
        new("h", Hour),
        new("d", Day),
    ];

    /// <summary>The unit table of <paramref name="kind"/>; empty for kinds that take no unit.</summary>
    public static IReadOnlyList<SettingUnit> For(SettingKind kind) => kind switch
    {
        SettingKind.Size => SizeUnits,
        SettingKind.Time => TimeUnits,
        _ => [],
    };
}
