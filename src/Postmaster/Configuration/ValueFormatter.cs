using System.Globalization;

namespace Postmaster.Configuration;

/// <summary>
/// Turns values back into text: the display form used by <see cref="Settings"/> (<c>8MB</c>, <c>1min</c>, <c>on</c>),
/// ranges and unit lists for messages, and configuration-file syntax for <see cref="DefaultConfigFile"/>.
/// A size or time is shown in the largest unit that represents it exactly; zero is shown as <c>0</c>.
/// </summary>
public static class ValueFormatter
{
    private const string TrueText = "on";
    private const string FalseText = "off";
    private const string ZeroText = "0";

    /// <summary>The display text of <paramref name="value"/>, a value of <paramref name="definition"/>.</summary>
    internal static string Format(SettingDefinition definition, ConfigValue value) => definition.Kind switch
    {
        SettingKind.Bool => value.Number != 0 ? TrueText : FalseText,
        SettingKind.Int or SettingKind.Size or SettingKind.Time => FormatNumber(definition.Kind, value.Number),
        SettingKind.Enum => definition.AllowedValues[(int)value.Number],
        SettingKind.String => value.Text,
        _ => throw new InvalidOperationException($"internal error: unknown setting kind {definition.Kind}"),
    };

    /// <summary>A number of <paramref name="kind"/> in its base unit, as display text: <c>100</c>, <c>8MB</c>, <c>5s</c>.</summary>
    public static string FormatNumber(SettingKind kind, long number)
    {
        IReadOnlyList<SettingUnit> units = SettingUnits.For(kind);
        if (number == 0 || units.Count == 0)
        {
            return number == 0 ? ZeroText : number.ToString(CultureInfo.InvariantCulture);
        }

        for (int index = units.Count - 1; index >= 0; index--)
        {
            decimal multiplier = units[index].Multiplier;
            if (decimal.Truncate(multiplier) == multiplier && number % (long)multiplier == 0)
            {
                long count = number / (long)multiplier;
                return count.ToString(CultureInfo.InvariantCulture) + units[index].Name;
            }
        }

        throw new InvalidOperationException($"internal error: the unit table of {kind} has no base unit");
    }

    /// <summary>The valid range of a numeric setting, e.g. <c>1 .. 10000</c> or <c>0 .. 1TB</c>.</summary>
    public static string FormatRange(SettingDefinition definition) =>
        $"{FormatNumber(definition.Kind, definition.Min)} .. {FormatNumber(definition.Kind, definition.Max)}";

    /// <summary>Allowed words of an enum setting, e.g. <c>off, try, on</c>.</summary>
    public static string FormatAllowedValues(SettingDefinition definition) => string.Join(", ", definition.AllowedValues);

    /// <summary>Unit names in PostgreSQL's hint style: <c>"B", "kB", "MB", "GB", and "TB"</c>.</summary>
    public static string FormatUnitList(SettingKind kind)
    {
        IReadOnlyList<string> quoted = SettingUnits.For(kind).Select(unit => $"\"{unit.Name}\"").ToList();
        return quoted.Count switch
        {
            0 => "",
            1 => quoted[0],
            _ => string.Join(", ", quoted.Take(quoted.Count - 1)) + ", and " + quoted[^1],
        };
    }

    /// <summary><paramref name="text"/> as a single-quoted configuration-file string, escaping backslashes, quotes and
    /// line breaks so that <see cref="ConfigFileParser"/> reads back the same text.</summary>
    public static string Quote(string text) =>
        "'" + text.Replace("\\", "\\\\").Replace("'", "''").Replace("\n", "\\n").Replace("\r", "\\r") + "'";

    /// <summary><paramref name="text"/> in configuration-file syntax: quoted for String settings, bare otherwise.</summary>
    public static string ToFileSyntax(SettingDefinition definition, string text) =>
        definition.Kind == SettingKind.String ? Quote(text) : text;
}
