using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace Postmaster.Configuration;

/// <summary>The workers of a <see cref="Settings"/> snapshot: read-only, enumerated in ordinal name order. A plain
/// dictionary plus a sorted key array (sorted collections cost start-up time in generic code that ReadyToRun cannot
/// precompile).</summary>
public sealed class OrderedWorkerMap : IReadOnlyDictionary<string, WorkerSettings>
{
    private readonly Dictionary<string, WorkerSettings> _byName;
    private readonly string[] _keys;

    public OrderedWorkerMap(Dictionary<string, WorkerSettings> byName)
    {
        _byName = byName;
        _keys = byName.Keys.ToArray();
        Array.Sort(_keys, StringComparer.Ordinal);
    }

    public int Count => _keys.Length;

    public IEnumerable<string> Keys => _keys;

    public IEnumerable<WorkerSettings> Values => _keys.Select(k => _byName[k]);

    public WorkerSettings this[string key] => _byName[key];

    public bool ContainsKey(string key) => _byName.ContainsKey(key);

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out WorkerSettings value) => _byName.TryGetValue(key, out value);

    public IEnumerator<KeyValuePair<string, WorkerSettings>> GetEnumerator() =>
        _keys.Select(k => new KeyValuePair<string, WorkerSettings>(k, _byName[k])).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
