namespace Postmaster.Configuration;

/// <summary>When a changed value of a setting takes effect.</summary>
public enum SettingContext
{
    /// <summary>Only at server start; a reload keeps the running value and reports the change as pending.</summary>
    Restart,

    /// <summary>At the next reload (SIGHUP).</summary>
    Reload,
}
