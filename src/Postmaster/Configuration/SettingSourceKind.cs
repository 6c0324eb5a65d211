namespace Postmaster.Configuration;

/// <summary>Where the effective value of a setting came from.</summary>
public enum SettingSourceKind
{
    /// <summary>The built-in default from <see cref="SettingCatalog"/>.</summary>
    Default,

    /// <summary>A line of the configuration file.</summary>
    File,

    /// <summary>A <c>-c name=value</c> command line option.</summary>
    CommandLine,
}
