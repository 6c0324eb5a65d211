namespace Postmaster.Configuration;

/// <summary>
/// Merges freshly loaded settings into the running ones for a reload, as PostgreSQL's SIGHUP processing does:
/// reloadable settings take the new value (and the change is reported); restart-only settings keep the running value
/// and a different new value is reported as pending. Workers are all reloadable: added, removed and changed workers are
/// reported, and what that means for processes is for the supervisor to decide.
/// </summary>
internal static class SettingsDiff
{
    public static ReloadResult Merge(Settings current, Settings loaded)
    {
        var next = new List<EffectiveSetting>();
        var changed = new List<string>();
        var pending = new List<string>();
        foreach (SettingDefinition definition in SettingCatalog.All)
        {
            EffectiveSetting running = current.Get(definition.Name);
            EffectiveSetting fresh = loaded.Get(definition.Name);
            bool differs = running.Value != fresh.Value;
            if (differs && definition.Context == SettingContext.Restart)
            {
                pending.Add($"parameter \"{definition.Name}\" cannot be changed without restarting the server");
                next.Add(running);
                continue;
            }

            if (differs)
            {
                changed.Add(ChangedMessage(fresh));
            }

            next.Add(fresh);
        }

        foreach (string worker in current.Workers.Keys.Union(loaded.Workers.Keys).Order(StringComparer.Ordinal))
        {
            if (!loaded.Workers.ContainsKey(worker))
            {
                changed.Add($"worker \"{worker}\" removed");
                continue;
            }

            List<EffectiveSetting> fresh = WorkerValues(loaded, worker);
            next.AddRange(fresh);
            if (!current.Workers.ContainsKey(worker))
            {
                changed.Add($"worker \"{worker}\" added");
                continue;
            }

            changed.AddRange(fresh.Where(setting => current.Get(setting.Name).Value != setting.Value).Select(ChangedMessage));
        }

        return new ReloadResult(new Settings(next), changed, pending);
    }

    private static List<EffectiveSetting> WorkerValues(Settings settings, string worker) =>
        WorkerSettingCatalog.Attributes.Select(template => settings.Get(WorkerSettingCatalog.FullName(worker, template)))
            .ToList();

    private static string ChangedMessage(EffectiveSetting setting) =>
        $"parameter \"{setting.Name}\" changed to \"{setting.Display}\"";
}
