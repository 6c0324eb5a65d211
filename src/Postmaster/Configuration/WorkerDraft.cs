namespace Postmaster.Configuration;

/// <summary>
/// The <c>worker.NAME.*</c> values collected for one worker while <see cref="SettingsBuilder"/> reads the entries.
/// Mutable; lives only during one load.
/// </summary>
internal sealed class WorkerDraft(string name, SettingSource firstSource)
{
    public string Name { get; } = name;

    /// <summary>Where the first <c>worker.NAME.*</c> key of this worker was read; errors about the whole worker go here.</summary>
    public SettingSource FirstSource { get; } = firstSource;

    /// <summary>Whether some <c>worker.NAME.entry</c> line exists, even one with an invalid value.</summary>
    public bool HasEntryLine { get; set; }

    /// <summary>Valid values by attribute name; the last one read wins.</summary>
    public Dictionary<string, EffectiveSetting> Values { get; } = new(StringComparer.Ordinal);
}
