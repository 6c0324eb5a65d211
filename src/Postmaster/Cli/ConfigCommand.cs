using System.CommandLine;
using System.Text.Json;
using Postmaster.Configuration;
using Postmaster.Daemon;

namespace Postmaster.Cli;

/// <summary>
/// <c>postmaster config</c>: the effective settings, as PostgreSQL's pg_settings shows them. With a server running,
/// the values in effect there (DIR/postmaster.settings, which it writes at start and after each reload), and for each
/// whether the files now say something else that a reload or only a restart would apply; without one, what the
/// configuration file gives. Each row: name, value, unit, default, source (<c>file:line</c>, <c>-c</c>, default),
/// context and pending. <c>--describe-config</c> prints the catalogue itself (PostgreSQL's
/// <c>postgres --describe-config</c>), from which docs/configuration.md is generated too.
/// </summary>
public static class ConfigCommand
{
    private static readonly Argument<string?> Name = new("NAME")
    {
        Description = "Show only this setting (e.g. max_backends, worker.demo.count)",
        Arity = ArgumentArity.ZeroOrOne,
    };

    private static readonly Option<bool> Describe = CliOptions.Flag("--describe-config", null,
        "Print the catalogue of settings (name, type, default, range, context, description) and exit");

    /// <summary>One row of the view.</summary>
    /// <param name="Value">Null for a setting only the files have (a worker added since the server started).</param>
    /// <param name="Pending">"reload" or "restart" when the files say <paramref name="PendingValue"/> instead.</param>
    private sealed record Row(string Name, SettingDefinition Definition, string? Value, SettingSource? Source,
        string? Pending, string? PendingValue);

    public static Command Create()
    {
        var cmd = new Command("config", "Show the effective settings of the running server (or of the configuration file), with their sources and pending changes")
        {
            CliOptions.DataDir, CliOptions.Json, Describe, Name,
        };
        cmd.SetAction(pr =>
        {
            bool json = pr.GetValue(CliOptions.Json);
            if (pr.GetValue(Describe))
            {
                if (pr.GetValue(Name) is not null)
                    throw new CliException("--describe-config takes no setting name", ExitCodes.Usage);
                PrintCatalogue(json);
                return ExitCodes.Ok;
            }
            var dir = CliOptions.ResolveDataDir(pr);
            return Show(dir, pr.GetValue(Name), json);
        });
        return cmd;
    }

    private static int Show(string dir, string? only, bool json)
    {
        DataDirectoryCheck.Require(dir, ExitCodes.Failure);
        string? name = only?.Trim().ToLowerInvariant();
        if (name is not null && Definition(name) is null)
        {
            var candidates = SettingCatalog.All.Select(d => d.Name);
            string? suggestion = NameSuggester.Suggest(name, candidates);
            throw new CliException($"unrecognized configuration parameter \"{only}\"", ExitCodes.Failure,
                hint: suggestion is not null ? $"Did you mean \"{suggestion}\"?" : "\"postmaster config --describe-config\" lists them all.");
        }
        string configPath = DataDirectory.ConfigPath(dir);
        RunningSettings? running = null;
        int? serverPid = null;
        using (var server = ServerControl.FindRunning(dir))
        {
            if (server is not null)
            {
                serverPid = server.Pid;
                running = RunningSettingsFile.TryRead(dir, server.Pid, out string? problem);
                if (running is null)
                    Report.Warning($"the settings in effect in the running server (PID {server.Pid}) are unknown: {problem}",
                        hint: "The values below are what the configuration file gives; \"postmaster reload\" makes the server write them.");
            }
        }

        Settings? files = null;
        IReadOnlyList<ConfigError> fileErrors = [];
        try
        {
            files = ConfigLoader.Load(configPath, running?.Overrides ?? []);
        }
        catch (ConfigException e)
        {
            fileErrors = e.Errors;
        }
        if (files is null && running is null)
        {
            foreach (var err in fileErrors)
                Report.Error(err.Message, hint: err.Hint);
            Report.Error($"configuration file \"{configPath}\" contains errors");
            return ExitCodes.Failure;
        }

        var rows = running is not null ? Compare(running, files) : files!.All.Select(s => new Row(s.Name, s.Definition, s.Display, s.Source, null, null)).ToList();
        if (name is not null)
        {
            rows = rows.Where(r => r.Name == name).ToList();
            if (rows.Count == 0)
                throw new CliException($"setting \"{name}\" is not set: worker \"{WorkerOf(name)}\" is not configured", ExitCodes.Failure);
        }
        if (files is null)
            Report.Warning($"configuration file \"{configPath}\" contains errors; a reload would keep the running values",
                detail: string.Join("\n", fileErrors.Select(e => e.Message)));

        if (json)
            JsonOut.Print(w => WriteJson(w, serverPid, running, files is not null, rows));
        else
            PrintTable(serverPid, running, rows);
        return ExitCodes.Ok;
    }

    /// <summary>The running values, each with what the files would change (null <paramref name="files"/>: they
    /// have errors, so nothing is pending), then the settings only the files have.</summary>
    private static List<Row> Compare(RunningSettings running, Settings? files)
    {
        var rows = new List<Row>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in running.Settings)
        {
            if (Definition(r.Name) is not { } definition)
                continue; // a setting this version no longer knows: the file came from an older postmaster
            seen.Add(r.Name);
            string? pending = null, pendingValue = null;
            if (files is not null)
            {
                if (!files.TryGet(r.Name, out var fresh))
                    (pending, pendingValue) = ("reload", null); // the worker was removed from the files
                else if (fresh.Display != r.Value)
                    (pending, pendingValue) = (Context(definition), fresh.Display);
            }
            rows.Add(new Row(r.Name, definition, r.Value, r.Source, pending, pendingValue));
        }
        if (files is not null)
            foreach (var s in files.All.Where(s => !seen.Contains(s.Name)))
                rows.Add(new Row(s.Name, s.Definition, null, null, "reload", s.Display));
        return rows;
    }

    private static SettingDefinition? Definition(string name)
    {
        if (SettingCatalog.TryGet(name, out var fixedDefinition))
            return fixedDefinition;
        return WorkerSettingCatalog.TrySplit(name, out _, out string attribute) && WorkerSettingCatalog.TryGetAttribute(attribute, out var template)
            ? template
            : null;
    }

    private static string WorkerOf(string name) => WorkerSettingCatalog.TrySplit(name, out string worker, out _) ? worker : name;

    private static string Context(SettingDefinition d) => d.Context == SettingContext.Restart ? "restart" : "reload";

    private static string SourceText(SettingSource? s) => s?.Kind switch
    {
        null => "",
        SettingSourceKind.File => $"{s.File}:{s.Line}",
        SettingSourceKind.CommandLine => s.Option,
        _ => "default",
    };

    private static string PendingText(Row r) => r.Pending is null ? ""
        : r.Value is null ? $"{r.Pending} (added: {r.PendingValue})"
        : r.PendingValue is null ? $"{r.Pending} (removed)"
        : $"{r.Pending} ({r.PendingValue})";

    private static void PrintTable(int? serverPid, RunningSettings? running, List<Row> rows)
    {
        Console.WriteLine(running is not null
            ? $"settings in effect in the running server (PID {serverPid}), loaded at {running.LoadedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC"
            : serverPid is not null
                ? $"settings the configuration file gives (the running server's, PID {serverPid}, are unknown)"
                : "settings the configuration file gives (no server is running)");
        var table = new List<string[]> { new[] { "name", "value", "unit", "default", "source", "context", "pending" } };
        table.AddRange(rows.Select(r => new[]
        {
            r.Name, r.Value ?? "-", r.Definition.BaseUnit ?? "", r.Definition.DefaultText ?? "(none)", SourceText(r.Source),
            Context(r.Definition), PendingText(r),
        }));
        int[] widths = Enumerable.Range(0, 7).Select(c => table.Max(t => t[c].Length)).ToArray();
        foreach (var t in table)
            Console.WriteLine(string.Join("  ", t.Select((cell, c) => c == 6 ? cell : cell.PadRight(widths[c]))).TrimEnd());
        int pendingReload = rows.Count(r => r.Pending == "reload"), pendingRestart = rows.Count(r => r.Pending == "restart");
        if (pendingReload + pendingRestart > 0)
            Console.WriteLine($"pending: {pendingReload} until a reload (\"postmaster reload\"), {pendingRestart} until a restart");
    }

    private static void WriteJson(Utf8JsonWriter w, int? serverPid, RunningSettings? running, bool filesValid, List<Row> rows)
    {
        w.WriteStartObject();
        if (serverPid is int pid)
            w.WriteNumber("server_pid", pid);
        else
            w.WriteNull("server_pid");
        w.WriteString("values", running is not null ? "running" : "files");
        if (running is not null)
            w.WriteString("loaded_at", running.LoadedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture));
        w.WriteBoolean("files_valid", filesValid);
        w.WriteStartArray("settings");
        foreach (var r in rows)
        {
            w.WriteStartObject();
            w.WriteString("name", r.Name);
            if (r.Value is null)
                w.WriteNull("value");
            else
                w.WriteString("value", r.Value);
            WriteNullable(w, "unit", r.Definition.BaseUnit);
            WriteNullable(w, "default", r.Definition.DefaultText);
            if (r.Source is null)
                w.WriteNull("source");
            else
                RunningSettingsFile.WriteSource(w, r.Source);
            w.WriteString("context", Context(r.Definition));
            WriteNullable(w, "pending", r.Pending);
            WriteNullable(w, "pending_value", r.PendingValue);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteNullable(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
            w.WriteNull(name);
        else
            w.WriteString(name, value);
    }

    /// <summary>The catalogue: text is one tab-separated line per setting (name, context, group, type, default, min,
    /// max, allowed values, description), as <c>postgres --describe-config</c> prints it; JSON an array.</summary>
    private static void PrintCatalogue(bool json)
    {
        var all = SettingCatalog.All.Concat(WorkerSettingCatalog.Attributes).ToList();
        if (json)
        {
            JsonOut.Print(w =>
            {
                w.WriteStartArray();
                foreach (var d in all)
                {
                    w.WriteStartObject();
                    w.WriteString("name", d.Name);
                    w.WriteString("type", KindName(d.Kind));
                    WriteNullable(w, "unit", d.BaseUnit);
                    WriteNullable(w, "default", d.DefaultText);
                    if (d.IsNumeric)
                    {
                        w.WriteNumber("min", d.Min);
                        w.WriteNumber("max", d.Max);
                    }
                    if (d.AllowedValues.Count > 0)
                    {
                        w.WriteStartArray("allowed_values");
                        foreach (var v in d.AllowedValues)
                            w.WriteStringValue(v);
                        w.WriteEndArray();
                    }
                    w.WriteString("context", Context(d));
                    w.WriteString("group", SettingCatalog.GroupTitle(d.Group));
                    w.WriteString("description", d.Description);
                    if (d.Documentation.Length > 0)
                        w.WriteString("documentation", d.Documentation);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            });
            return;
        }
        foreach (var d in all)
        {
            Console.WriteLine(string.Join('\t', d.Name, Context(d), SettingCatalog.GroupTitle(d.Group), KindName(d.Kind), d.DefaultText ?? "",
                d.IsNumeric ? ValueFormatter.FormatNumber(d.Kind, d.Min) : "", d.IsNumeric ? ValueFormatter.FormatNumber(d.Kind, d.Max) : "",
                string.Join(',', d.AllowedValues), d.Description.Replace('\t', ' ')));
        }
    }

    private static string KindName(SettingKind kind) => kind switch
    {
        SettingKind.Bool => "bool",
        SettingKind.Int => "integer",
        SettingKind.Size => "size",
        SettingKind.Time => "time",
        SettingKind.Enum => "enum",
        _ => "string",
    };
}
