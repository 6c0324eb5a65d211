namespace Postmaster.Configuration;

/// <summary>
/// The value type of a configuration setting. It decides how the text of a value is parsed and displayed.
/// Numbers of kind <see cref="Size"/> are bytes internally and numbers of kind <see cref="Time"/> are milliseconds.
/// </summary>
public enum SettingKind
{
    /// <summary>on/off, true/false, yes/no, 1/0 (and unique prefixes), case-insensitive.</summary>
    Bool,

    /// <summary>A plain integer without a unit.</summary>
    Int,

    /// <summary>An amount of memory; units B, kB, MB, GB, TB; a bare number is bytes.</summary>
    Size,

    /// <summary>A duration; units us, ms, s, min, h, d; a bare number is milliseconds.</summary>
    Time,

    /// <summary>One of a fixed list of words, case-insensitive.</summary>
    Enum,

    /// <summary>Free text.</summary>
    String,
}
