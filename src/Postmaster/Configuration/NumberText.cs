using System.Globalization;
using System.Text.RegularExpressions;

namespace Postmaster.Configuration;

/// <summary>
/// Splits the text of a numeric value into a decimal number and a unit: an optional sign, digits with an optional
/// fraction and exponent (<c>1</c>, <c>-2</c>, <c>1.5</c>, <c>.5</c>, <c>1e3</c>), optional spaces, and optional unit
/// letters. Only ASCII digits count; hexadecimal and octal forms are not accepted (a leading zero is decimal).
/// </summary>
internal static partial class NumberText
{
    private const NumberStyles DecimalStyles =
        NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent;

    /// <summary>
    /// Returns false when <paramref name="text"/> is not a number followed by optional unit letters. Otherwise
    /// <paramref name="unit"/> is the unit text (possibly empty) and <paramref name="number"/> the value, unless it is too
    /// large for <see cref="decimal"/>, in which case <paramref name="tooLarge"/> is true and <paramref name="number"/> 0.
    /// </summary>
    public static bool TrySplit(string text, out decimal number, out string unit, out bool tooLarge)
    {
        number = 0;
        unit = "";
        tooLarge = false;
        Match match = NumberWithUnitRegex().Match(text.Trim());
        if (!match.Success)
        {
            return false;
        }

        unit = match.Groups["unit"].Value;
        tooLarge = !decimal.TryParse(match.Groups["number"].Value, DecimalStyles, CultureInfo.InvariantCulture, out number);
        return true;
    }

    [GeneratedRegex(@"^(?<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[ \t]*(?<unit>[A-Za-z]*)\z",
        RegexOptions.CultureInvariant)]
    private static partial Regex NumberWithUnitRegex();
}
