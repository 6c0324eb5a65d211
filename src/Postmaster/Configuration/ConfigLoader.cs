namespace Postmaster.Configuration;

/// <summary>
/// Loads <c>postmaster.conf</c> plus <c>-c name=value</c> overrides into a <see cref="Settings"/> snapshot, and
/// reloads it on SIGHUP. The file must exist (<c>init</c> always writes one), so a missing file is an error rather than
/// an implicit "all defaults". Any invalid input ends in a <see cref="ConfigException"/> listing every error; no other
/// exception is thrown for bad input, and nothing from an invalid configuration is applied.
/// </summary>
internal static class ConfigLoader
{
    /// <summary>Name of the configuration file in the data directory.</summary>
    public const string FileName = "postmaster.conf";

    /// <summary>
    /// Reads <paramref name="configPath"/>, then applies <paramref name="overrides"/> (each the <c>name=value</c> text of a
    /// <c>-c</c> option) in order. For every name the last assignment wins, so an override beats the file.
    /// </summary>
    /// <exception cref="ConfigException">The file cannot be read, or it or an override contains errors.</exception>
    /// <exception cref="ArgumentException"><paramref name="configPath"/> is empty (a programming error).</exception>
    public static Settings Load(string configPath, IReadOnlyList<string> overrides)
    {
        ArgumentException.ThrowIfNullOrEmpty(configPath);
        string fullPath = Path.GetFullPath(configPath);
        string text = ReadFile(fullPath);
        return LoadText(text, fullPath, overrides);
    }

    /// <summary>
    /// Loads the configuration again and merges it into <paramref name="current"/>: see <see cref="ReloadResult"/>.
    /// </summary>
    /// <exception cref="ConfigException">As for <see cref="Load"/>; the caller keeps <paramref name="current"/>.</exception>
    public static ReloadResult Reload(Settings current, string configPath, IReadOnlyList<string> overrides) =>
        SettingsDiff.Merge(current, Load(configPath, overrides));

    /// <summary>
    /// Parses <paramref name="text"/> as the contents of the file <paramref name="configPath"/> (used in messages) and
    /// applies <paramref name="overrides"/>.
    /// </summary>
    internal static Settings LoadText(string text, string configPath, IReadOnlyList<string> overrides)
    {
        var entries = new List<ConfigEntry>();
        var syntaxErrors = new List<ConfigError>();
        ConfigFileParser.Parse(text, configPath, entries, syntaxErrors);

        var builder = new SettingsBuilder();
        syntaxErrors.ForEach(builder.AddError);
        entries.ForEach(builder.Apply);
        foreach (string assignment in overrides)
        {
            if (CommandLineOverride.TryParse(assignment, out ConfigEntry? entry, out ConfigError? error))
            {
                builder.Apply(entry);
            }
            else
            {
                builder.AddError(error);
            }
        }

        return builder.Build();
    }

    private static string ReadFile(string path)
    {
        if (Directory.Exists(path))
        {
            throw CannotOpen(path, "Is a directory");
        }

        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception exception) when (exception is FileNotFoundException or DirectoryNotFoundException)
        {
            throw CannotOpen(path, "No such file or directory");
        }
        catch (UnauthorizedAccessException)
        {
            throw CannotOpen(path, "Permission denied");
        }
        catch (IOException exception)
        {
            throw CannotOpen(path, exception.Message);
        }
    }

    private static ConfigException CannotOpen(string path, string reason) =>
        new([new ConfigError(path, ConfigError.NoLine, $"could not open configuration file \"{path}\": {reason}", null)]);
}
