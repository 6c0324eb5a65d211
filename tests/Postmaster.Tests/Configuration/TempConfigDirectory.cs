namespace Postmaster.Tests.Configuration;

/// <summary>A unique temporary directory for configuration files, deleted with everything in it on Dispose.</summary>
public sealed class TempConfigDirectory : IDisposable
{
    public TempConfigDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"postmaster-config-tests-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>Path of <c>postmaster.conf</c> in this directory (whether or not it exists).</summary>
    public string ConfigPath => System.IO.Path.Combine(Path, Postmaster.Configuration.ConfigLoader.FileName);

    /// <summary>Writes <paramref name="text"/> to <see cref="ConfigPath"/> and returns that path.</summary>
    public string Write(string text)
    {
        File.WriteAllText(ConfigPath, text);
        return ConfigPath;
    }

    /// <summary>Writes the lines, joined with LF, to <see cref="ConfigPath"/> and returns that path.</summary>
    public string WriteLines(params string[] lines) => Write(string.Join('\n', lines) + "\n");

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
