namespace Postmaster.Configuration;

/// <summary>
/// Validates <see cref="ConfigEntry"/> items in order (file lines, then <c>-c</c> options) and turns them into a
/// <see cref="Settings"/> snapshot. Every entry is checked, also one that a later duplicate overrides; the last valid
/// value of a name wins. Errors are collected, not thrown one by one; <see cref="Build"/> throws them all together.
/// Used once per load.
/// </summary>
internal sealed class SettingsBuilder
{
    private readonly Dictionary<string, EffectiveSetting> _fixed = SettingCatalog.All.ToDictionary(
        definition => definition.Name,
        definition => EffectiveSetting.FromDefault(definition, definition.Name),
        StringComparer.Ordinal);

    /// <summary>Parts of a worker setting name split at dots: "worker", NAME, attribute.</summary>
    private const int WorkerNameParts = 3;

    private readonly Dictionary<string, WorkerDraft> _workers = new(StringComparer.Ordinal);
    private readonly List<ConfigError> _errors = [];

    public void AddError(ConfigError error) => _errors.Add(error);

    /// <summary>Checks one assignment and records its value or its error.</summary>
    public void Apply(ConfigEntry entry)
    {
        if (SettingCatalog.TryGet(entry.Name, out SettingDefinition? definition))
        {
            if (TryParse(definition, entry, out EffectiveSetting? setting))
            {
                _fixed[entry.Name] = setting;
            }

            return;
        }

        if (WorkerSettingCatalog.TrySplit(entry.Name, out string worker, out string attribute))
        {
            ApplyWorkerSetting(entry, worker, attribute);
            return;
        }

        ReportUnrecognized(entry, SettingCatalog.All.Select(candidate => candidate.Name).Concat(WorkerCandidates(entry.Name)));
    }

    /// <summary>Completes the workers and returns the snapshot; throws <see cref="ConfigException"/> with every error
    /// found, in line order, errors without a line (<c>-c</c> options) last.</summary>
    public Settings Build()
    {
        var settings = new List<EffectiveSetting>(_fixed.Values);
        var names = _workers.Keys.ToArray();
        Array.Sort(names, StringComparer.Ordinal); // workers in name order, as the file order does not matter
        foreach (string name in names)
        {
            settings.AddRange(CompleteWorker(_workers[name]));
        }

        if (_errors.Count > 0)
        {
            throw new ConfigException(_errors.OrderBy(error => error.Line == ConfigError.NoLine ? int.MaxValue : error.Line)
                .ToList());
        }

        return new Settings(settings);
    }

    private void ApplyWorkerSetting(ConfigEntry entry, string worker, string attribute)
    {
        if (!WorkerSettingCatalog.IsValidWorkerName(worker))
        {
            _errors.Add(ConfigError.At(entry.Source,
                $"invalid worker name \"{worker}\" in parameter \"{entry.Name}\" ({entry.Source.Location})",
                $"A worker name matches {WorkerSettingCatalog.WorkerNamePattern}: a letter or underscore, then up to "
                + $"{WorkerSettingCatalog.MaxWorkerNameLength - 1} letters, digits, underscores or hyphens."));
            return;
        }

        if (!WorkerSettingCatalog.TryGetAttribute(attribute, out SettingDefinition? template))
        {
            ReportUnrecognized(entry, WorkerSettingCatalog.Attributes.Select(
                candidate => WorkerSettingCatalog.FullName(worker, candidate)));
            return;
        }

        if (!_workers.TryGetValue(worker, out WorkerDraft? draft))
        {
            draft = new WorkerDraft(worker, entry.Source);
            _workers.Add(worker, draft);
        }

        if (attribute == WorkerSettingCatalog.Entry)
        {
            draft.HasEntryLine = true;
        }

        if (TryParse(template, entry, out EffectiveSetting? setting))
        {
            draft.Values[attribute] = setting;
        }
    }

    /// <summary>Every attribute of a worker, defaults filled in; empty when the worker has errors (they are recorded).</summary>
    private IEnumerable<EffectiveSetting> CompleteWorker(WorkerDraft draft)
    {
        string entryName = WorkerSettingCatalog.FullName(draft.Name, WorkerSettingCatalog.Entry);
        if (!draft.HasEntryLine)
        {
            _errors.Add(ConfigError.At(draft.FirstSource,
                $"worker \"{draft.Name}\" has no \"{entryName}\" parameter (first setting of the worker in "
                + $"{draft.FirstSource.Location})",
                $"Every worker needs an entry, e.g. {entryName} = 'idle'."));
            return [];
        }

        if (!draft.Values.ContainsKey(WorkerSettingCatalog.Entry))
        {
            return [];
        }

        var values = WorkerSettingCatalog.Attributes.ToDictionary(
            template => WorkerSettingCatalog.AttributeOf(template),
            template => draft.Values.TryGetValue(WorkerSettingCatalog.AttributeOf(template), out EffectiveSetting? setting)
                ? setting
                : EffectiveSetting.FromDefault(template, WorkerSettingCatalog.FullName(draft.Name, template)),
            StringComparer.Ordinal);

        EffectiveSetting delay = values[WorkerSettingCatalog.RestartDelay];
        EffectiveSetting delayMax = values[WorkerSettingCatalog.RestartDelayMax];
        if (delayMax.Value.Number < delay.Value.Number)
        {
            SettingSource place = delayMax.Source.Kind != SettingSourceKind.Default ? delayMax.Source : delay.Source;
            _errors.Add(ConfigError.At(place,
                $"parameter \"{delayMax.Name}\" ({delayMax.Display}) must not be less than \"{delay.Name}\" "
                + $"({delay.Display}) ({place.Location})",
                $"Set {delayMax.Name} to {delay.Display} or more, or lower {delay.Name}."));
            return [];
        }

        EffectiveSetting count = values[WorkerSettingCatalog.Count];
        if (count.Value.Number > 1)
        {
            string lastInstance = $"{draft.Name}.{count.Value.Number}";
            if (lastInstance.Length > WorkerSettingCatalog.MaxInstanceNameLength)
            {
                SettingSource place = count.Source.Kind != SettingSourceKind.Default ? count.Source : draft.FirstSource;
                _errors.Add(ConfigError.At(place,
                    $"worker \"{draft.Name}\" with \"{count.Name}\" = {count.Display} would name its instances up to "
                    + $"\"{lastInstance}\", longer than {WorkerSettingCatalog.MaxInstanceNameLength} characters ({place.Location})",
                    $"Use a worker name of at most {WorkerSettingCatalog.MaxInstanceNameLength - 1 - count.Value.Number.ToString(System.Globalization.CultureInfo.InvariantCulture).Length} characters, or a lower count."));
                return [];
            }
        }

        return values.Values;
    }

    private bool TryParse(SettingDefinition definition, ConfigEntry entry,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out EffectiveSetting? setting)
    {
        if (ValueParser.TryParse(definition, entry.Name, entry.Value, entry.Source, out ConfigValue value,
                out ConfigError? error))
        {
            setting = new EffectiveSetting(entry.Name, definition, value, entry.Source);
            return true;
        }

        _errors.Add(error);
        setting = null;
        return false;
    }

    private void ReportUnrecognized(ConfigEntry entry, IEnumerable<string> candidates)
    {
        string? suggestion = NameSuggester.Suggest(entry.Name, candidates);
        _errors.Add(ConfigError.At(entry.Source,
            $"unrecognized configuration parameter \"{entry.Name}\" in {entry.Source.Location}",
            suggestion is null ? null : $"Did you mean \"{suggestion}\"?"));
    }

    /// <summary>For a misspelt worker prefix such as <c>wroker.x.count</c>: the worker settings of worker <c>x</c>.</summary>
    private static IEnumerable<string> WorkerCandidates(string name)
    {
        string[] parts = name.Split('.');
        bool looksLikeWorker = parts.Length == WorkerNameParts && WorkerSettingCatalog.IsValidWorkerName(parts[1]);
        return looksLikeWorker
            ? WorkerSettingCatalog.Attributes.Select(template => WorkerSettingCatalog.FullName(parts[1], template))
            : [];
    }
}
