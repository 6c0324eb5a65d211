namespace Postmaster.Configuration;

/// <summary>
/// One <c>name = value</c> assignment as read, before validation: from a file line or a <c>-c</c> option.
/// <see cref="Name"/> is lower case; <see cref="Value"/> is the value text with quotes and escapes already resolved.
/// </summary>
internal sealed record ConfigEntry(string Name, string Value, SettingSource Source);
