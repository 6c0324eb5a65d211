namespace Postmaster.Configuration;

/// <summary>
/// A parsed, validated setting value. <see cref="Number"/> holds Bool (0 or 1), Int, Size (bytes), Time (milliseconds)
/// and Enum (index into <see cref="SettingDefinition.AllowedValues"/>); <see cref="Text"/> holds String values and is
/// empty for every other kind.
/// </summary>
internal readonly record struct ConfigValue(long Number, string Text)
{
    public static ConfigValue OfNumber(long number) => new(number, "");

    public static ConfigValue OfText(string text) => new(0, text);
}
