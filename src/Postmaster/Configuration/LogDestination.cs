namespace Postmaster.Configuration;

/// <summary>Value of <c>log_destination</c>. The member order matches the allowed values in <see cref="SettingCatalog"/>.</summary>
public enum LogDestination
{
    /// <summary>Plain text lines on standard error.</summary>
    Stderr,

    /// <summary>JSON lines in files under <c>log_directory</c>.</summary>
    Json,

    /// <summary>Both of the above.</summary>
    Both,
}
