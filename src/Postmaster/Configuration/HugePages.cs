namespace Postmaster.Configuration;

/// <summary>Value of <c>huge_pages</c>. The member order matches the allowed values in <see cref="SettingCatalog"/>.</summary>
public enum HugePages
{
    /// <summary>Never request huge pages.</summary>
    Off,

    /// <summary>Request huge pages and fall back to normal pages when that fails.</summary>
    Try,

    /// <summary>Request huge pages; failing to get them stops the server from starting.</summary>
    On,
}
