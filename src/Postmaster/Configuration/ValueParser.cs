using System.Diagnostics.CodeAnalysis;

namespace Postmaster.Configuration;

/// <summary>
/// Converts the text of a value into a <see cref="ConfigValue"/> according to its <see cref="SettingDefinition"/>, or
/// into a <see cref="ConfigError"/> worded after PostgreSQL's messages. Rules:
/// <list type="bullet">
/// <item>Bool: on, off, true, false, yes, no, 1, 0, case-insensitive; a unique prefix is enough (<c>t</c>, <c>of</c>).</item>
/// <item>Enum: one of the allowed words, case-insensitive.</item>
/// <item>Int/Size/Time: a decimal number (fraction and exponent allowed) with a case-sensitive unit for sizes and times;
/// a bare number is bytes for sizes and milliseconds for times. The value is converted to the base unit exactly and then
/// rounded to an integer, half to even (like PostgreSQL's <c>rint</c>): <c>1.5MB</c> = 1572864 bytes,
/// <c>1500us</c> = 2 ms, <c>2.5</c> = 2. The rounded value must lie within Min .. Max.</item>
/// <item>String: taken as is; only the emptiness rule of the definition is checked.</item>
/// </list>
/// </summary>
internal static class ValueParser
{
    private static readonly string[] s_trueWords = ["true", "yes", "on", "1"];
    private static readonly string[] s_falseWords = ["false", "no", "off", "0"];

    /// <summary>"o" alone could be "on" or "off", so words starting with "o" need this many characters.</summary>
    private const int OnOffMinimumPrefix = 2;

    /// <summary>
    /// Parses <paramref name="text"/> for the setting <paramref name="name"/> (the real name, e.g. <c>worker.a.count</c>)
    /// described by <paramref name="definition"/>; errors are placed at <paramref name="source"/>.
    /// </summary>
    public static bool TryParse(SettingDefinition definition, string name, string text, SettingSource source,
        out ConfigValue value, [NotNullWhen(false)] out ConfigError? error)
    {
        value = default;
        error = null;
        switch (definition.Kind)
        {
            case SettingKind.Bool:
                return TryParseBool(name, text, source, out value, out error);
            case SettingKind.Enum:
                return TryParseEnum(definition, name, text, source, out value, out error);
            case SettingKind.Int:
            case SettingKind.Size:
            case SettingKind.Time:
                return TryParseNumber(definition, name, text, source, out value, out error);
            case SettingKind.String:
                if (!definition.AllowEmpty && text.Length == 0)
                {
                    error = InvalidValue(name, text, source, "This parameter must not be empty.");
                    return false;
                }

                if (text.Contains('\0'))
                {
                    error = InvalidValue(name, text.Replace("\0", "\\0"), source, "This parameter must not contain NUL characters.");
                    return false;
                }

                if (definition.MaxBytes > 0 && System.Text.Encoding.UTF8.GetByteCount(text) > definition.MaxBytes)
                {
                    error = ConfigError.At(source,
                        $"value for parameter \"{name}\" is too long: {System.Text.Encoding.UTF8.GetByteCount(text)} bytes ({source.Location})",
                        $"At most {definition.MaxBytes} bytes are allowed.");
                    return false;
                }

                if (definition.Validate?.Invoke(text) is { } problem)
                {
                    error = InvalidValue(name, text, source, problem);
                    return false;
                }

                value = ConfigValue.OfText(text);
                return true;
            default:
                throw new InvalidOperationException($"internal error: unknown setting kind {definition.Kind}");
        }
    }

    private static bool TryParseBool(string name, string text, SettingSource source, out ConfigValue value,
        [NotNullWhen(false)] out ConfigError? error)
    {
        string word = text.Trim().ToLowerInvariant();
        bool isTrue = s_trueWords.Any(candidate => IsBoolPrefix(word, candidate));
        bool isFalse = s_falseWords.Any(candidate => IsBoolPrefix(word, candidate));
        if (isTrue == isFalse)
        {
            value = default;
            error = InvalidValue(name, text, source,
                "This parameter requires a Boolean value: on, off, true, false, yes, no, 1 or 0.");
            return false;
        }

        value = ConfigValue.OfNumber(isTrue ? 1 : 0);
        error = null;
        return true;
    }

    private static bool IsBoolPrefix(string word, string candidate)
    {
        if (word.Length == 0 || !candidate.StartsWith(word, StringComparison.Ordinal))
        {
            return false;
        }

        bool isDigit = char.IsAsciiDigit(candidate[0]);
        bool needsTwo = candidate[0] == 'o';
        return isDigit ? word.Length == candidate.Length : !needsTwo || word.Length >= OnOffMinimumPrefix;
    }

    private static bool TryParseEnum(SettingDefinition definition, string name, string text, SettingSource source,
        out ConfigValue value, [NotNullWhen(false)] out ConfigError? error)
    {
        string word = text.Trim();
        for (int index = 0; index < definition.AllowedValues.Count; index++)
        {
            if (string.Equals(definition.AllowedValues[index], word, StringComparison.OrdinalIgnoreCase))
            {
                value = ConfigValue.OfNumber(index);
                error = null;
                return true;
            }
        }

        value = default;
        error = InvalidValue(name, text, source, $"Available values: {ValueFormatter.FormatAllowedValues(definition)}.");
        return false;
    }

    private static bool TryParseNumber(SettingDefinition definition, string name, string text, SettingSource source,
        out ConfigValue value, [NotNullWhen(false)] out ConfigError? error)
    {
        value = default;
        string range = ValueFormatter.FormatRange(definition);
        if (!NumberText.TrySplit(text, out decimal number, out string unitName, out bool tooLarge))
        {
            error = InvalidValue(name, text, source, NumberHint(definition, range));
            return false;
        }

        decimal multiplier = 1;
        if (unitName.Length > 0)
        {
            if (definition.Kind == SettingKind.Int)
            {
                error = InvalidValue(name, text, source, NumberHint(definition, range));
                return false;
            }

            SettingUnit? unit = SettingUnits.For(definition.Kind).FirstOrDefault(candidate => candidate.Name == unitName);
            if (unit is null)
            {
                error = ConfigError.At(source,
                    $"invalid unit \"{unitName}\" for parameter \"{name}\": \"{text}\" ({source.Location})",
                    $"Valid units for this parameter are {ValueFormatter.FormatUnitList(definition.Kind)}.");
                return false;
            }

            multiplier = unit.Multiplier;
        }

        // Checked before multiplying so that neither the product nor the conversion to long can overflow.
        if (tooLarge || Math.Abs(number) > long.MaxValue / multiplier)
        {
            error = OutOfRange(name, text, source, range);
            return false;
        }

        decimal rounded = Math.Round(number * multiplier, MidpointRounding.ToEven);
        if (rounded < definition.Min || rounded > definition.Max)
        {
            error = OutOfRange(name, text, source, range);
            return false;
        }

        value = ConfigValue.OfNumber((long)rounded);
        error = null;
        return true;
    }

    private static string NumberHint(SettingDefinition definition, string range) => definition.Kind switch
    {
        SettingKind.Int => $"Expected an integer in the range {range}, without a unit.",
        SettingKind.Size => $"Expected a number of bytes in the range {range}, optionally followed by one of the units "
            + $"{ValueFormatter.FormatUnitList(definition.Kind)}.",
        SettingKind.Time => $"Expected a number of milliseconds in the range {range}, optionally followed by one of the "
            + $"units {ValueFormatter.FormatUnitList(definition.Kind)}.",
        _ => throw new InvalidOperationException($"internal error: {definition.Kind} is not a numeric kind"),
    };

    private static ConfigError InvalidValue(string name, string text, SettingSource source, string hint) =>
        ConfigError.At(source, $"invalid value for parameter \"{name}\": \"{text}\" ({source.Location})", hint);

    private static ConfigError OutOfRange(string name, string text, SettingSource source, string range) =>
        ConfigError.At(source,
            $"{text.Trim()} is outside the valid range for parameter \"{name}\" ({range}) ({source.Location})");
}
