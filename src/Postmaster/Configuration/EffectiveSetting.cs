namespace Postmaster.Configuration;

/// <summary>
/// The value a setting has in a <see cref="Settings"/> snapshot, with its display text and where it came from; for a
/// <c>show</c> command and for logs. Immutable.
/// </summary>
public sealed class EffectiveSetting
{
    internal EffectiveSetting(string name, SettingDefinition definition, ConfigValue value, SettingSource source)
    {
        Name = name;
        Definition = definition;
        Value = value;
        Source = source;
        Display = ValueFormatter.Format(definition, value);
    }

    /// <summary>Full lower-case name, e.g. <c>max_backends</c> or <c>worker.demo.count</c>.</summary>
    public string Name { get; }

    /// <summary>The catalogue entry; for worker settings the <c>worker.NAME.*</c> template.</summary>
    public SettingDefinition Definition { get; }

    /// <summary>The value as text: <c>8MB</c>, <c>1min</c>, <c>on</c>, <c>posix</c>, or the string itself.</summary>
    public string Display { get; }

    public SettingSource Source { get; }

    internal ConfigValue Value { get; }

    /// <summary>The built-in default of <paramref name="definition"/> under the name <paramref name="name"/>.</summary>
    internal static EffectiveSetting FromDefault(SettingDefinition definition, string name)
    {
        string defaultText = definition.DefaultText
            ?? throw new InvalidOperationException($"internal error: \"{name}\" has no default value");
        if (!ValueParser.TryParse(definition, name, defaultText, SettingSource.Default, out ConfigValue value, out _))
        {
            throw new InvalidOperationException($"internal error: the default of \"{name}\" is invalid: \"{defaultText}\"");
        }

        return new EffectiveSetting(name, definition, value, SettingSource.Default);
    }

    /// <summary><c>name = display (source)</c>, e.g. <c>max_backends = 50 (file "/d/postmaster.conf" line 4)</c>.</summary>
    public override string ToString() => $"{Name} = {Display} ({Source})";
}
