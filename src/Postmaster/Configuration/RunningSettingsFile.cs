using System.Globalization;
using System.Text;
using System.Text.Json;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Os;

namespace Postmaster.Configuration;

/// <summary>One setting as the running server uses it: name, display value and where it came from.</summary>
internal sealed record RunningSetting(string Name, string Value, SettingSource Source);

/// <summary>What <see cref="RunningSettingsFile"/> holds: the settings in effect in the server <see cref="Pid"/>,
/// as of its start or its last reload that applied, and the -c overrides it re-applies on every reload.</summary>
internal sealed record RunningSettings(int Pid, DateTimeOffset LoadedAt, IReadOnlyList<string> Overrides, IReadOnlyList<RunningSetting> Settings);

/// <summary>
/// DIR/postmaster.settings: the settings in effect in the running server (PostgreSQL shows them as pg_settings), for
/// <c>postmaster config</c>, which compares them with what the files now say to tell a pending reload or restart.
/// Written by the postmaster only while it holds the data directory's lock (at start, after every reload that
/// applied), atomically and 0600; removed at shutdown. JSON, read without reflection and trusted only when its format,
/// version and pid (the proven lock holder's) match.
/// </summary>
internal static class RunningSettingsFile
{
    public const string FileName = "postmaster.settings";
    private const string Format = "postmaster.settings";
    private const int Version = 1;

    public static string PathIn(string dataDir) => Path.Combine(dataDir, FileName);

    public static void Write(string dataDir, int pid, Settings settings, IReadOnlyList<string> overrides, DateTimeOffset loadedAt)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("format", Format);
            w.WriteNumber("version", Version);
            w.WriteNumber("pid", pid);
            w.WriteString("loaded_at", loadedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
            w.WriteStartArray("overrides");
            foreach (string o in overrides)
                w.WriteStringValue(o);
            w.WriteEndArray();
            w.WriteStartArray("settings");
            foreach (EffectiveSetting s in settings.All)
            {
                w.WriteStartObject();
                w.WriteString("name", s.Name);
                w.WriteString("value", s.Display);
                WriteSource(w, s.Source);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        OwnerOnlyFile.WriteAtomically(PathIn(dataDir), Encoding.UTF8.GetString(ms.ToArray()) + "\n");
    }

    /// <summary>The source as JSON members: <c>"source": "default" | "file" | "command line"</c>, with <c>file</c> and
    /// <c>line</c>, or <c>option</c>.</summary>
    public static void WriteSource(Utf8JsonWriter w, SettingSource source)
    {
        switch (source.Kind)
        {
            case SettingSourceKind.File:
                w.WriteString("source", "file");
                w.WriteString("file", source.File);
                w.WriteNumber("line", source.Line);
                break;
            case SettingSourceKind.CommandLine:
                w.WriteString("source", "command line");
                w.WriteString("option", source.Option);
                break;
            default:
                w.WriteString("source", "default");
                break;
        }
    }

    /// <summary>The largest settings file read (thousands of workers fit in far less).</summary>
    public const int MaxFileBytes = 16 * 1024 * 1024;

    /// <summary>The file of the server <paramref name="pid"/>; null with <paramref name="problem"/> set when it is
    /// missing, damaged or another process's (a server killed before it could remove it).</summary>
    public static RunningSettings? TryRead(string dataDir, int pid, out string? problem)
    {
        string path = PathIn(dataDir);
        byte[] bytes;
        try
        {
            // Not followed if a symbolic link, refused unless a regular file, never a blocking read (a FIFO), bounded.
            string? text = SmallFile.Read(path, MaxFileBytes + 1, "settings file");
            if (text is null)
            {
                problem = $"the server has not written \"{path}\"";
                return null;
            }
            bytes = System.Text.Encoding.UTF8.GetBytes(text);
            if (bytes.Length > MaxFileBytes)
            {
                problem = $"\"{path}\" is larger than {MaxFileBytes / (1024 * 1024)} MB: it is not the server's";
                return null;
            }
        }
        catch (ShmemException e)
        {
            problem = $"could not read \"{path}\": {e.Message}";
            return null;
        }
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || Str(root, "format") != Format)
                throw new FormatException("it is not a postmaster settings file");
            if (!root.TryGetProperty("version", out var v) || !v.TryGetInt32(out int version) || version != Version)
                throw new FormatException($"it has layout version {(root.TryGetProperty("version", out var vv) ? vv.ToString() : "(none)")}, expected {Version}");
            if (!root.TryGetProperty("pid", out var p) || !p.TryGetInt32(out int filePid))
                throw new FormatException("it names no server");
            if (filePid != pid)
            {
                problem = $"\"{path}\" was written by PID {filePid}, not by the running server (PID {pid})";
                return null;
            }
            var loadedAt = DateTimeOffset.Parse(Str(root, "loaded_at") ?? throw new FormatException("\"loaded_at\" is missing"), CultureInfo.InvariantCulture);
            var overrides = new List<string>();
            foreach (var o in Array(root, "overrides"))
                overrides.Add(o.GetString() ?? throw new FormatException("an override is not a string"));
            var settings = new List<RunningSetting>();
            foreach (var s in Array(root, "settings"))
            {
                string name = Str(s, "name") ?? throw new FormatException("a setting has no name");
                string value = Str(s, "value") ?? throw new FormatException($"setting \"{name}\" has no value");
                settings.Add(new RunningSetting(name, value, ReadSource(s, name)));
            }
            problem = null;
            return new RunningSettings(filePid, loadedAt, overrides, settings);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            problem = $"\"{path}\" is damaged: {e.Message}";
            return null;
        }
    }

    /// <summary>Removes the file (at shutdown, and by <c>cleanup</c> after a crash). Never throws.</summary>
    public static void Remove(string dataDir)
    {
        try
        {
            File.Delete(PathIn(dataDir));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a leftover is harmless: it names a pid that no longer holds the lock
        }
    }

    private static SettingSource ReadSource(JsonElement s, string name) => Str(s, "source") switch
    {
        "file" => SettingSource.FromFile(Str(s, "file") ?? throw new FormatException($"setting \"{name}\" has no file"),
            s.TryGetProperty("line", out var l) && l.TryGetInt32(out int line) && line > 0 ? line : throw new FormatException($"setting \"{name}\" has no line")),
        "command line" => SettingSource.FromCommandLine(Str(s, "option") is { } option && option.StartsWith("-c ", StringComparison.Ordinal)
            ? option[3..] : throw new FormatException($"setting \"{name}\" has no option")),
        "default" => SettingSource.Default,
        var other => throw new FormatException($"setting \"{name}\" has an unknown source \"{other}\""),
    };

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static JsonElement.ArrayEnumerator Array(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray()
            : throw new FormatException($"\"{name}\" is missing");
}
