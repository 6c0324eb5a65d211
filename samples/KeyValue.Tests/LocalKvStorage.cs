using System.Collections.Concurrent;

namespace KeyValue.Tests;

/// <summary>Keys in a process-local dictionary, with the shared table's semantics (each operation atomic on its key) and
/// an optional memory limit. <see cref="OnWrite"/> runs before each write: a test's way to act in the middle of a
/// command.</summary>
internal sealed class LocalKvStorage(long memoryLimit = long.MaxValue) : IKvStorage
{
    private readonly ConcurrentDictionary<string, byte[]> _keys = new(StringComparer.Ordinal);
    private long _bytes;

    public Action? OnWrite { get; set; }

    public int Read(ReadOnlySpan<byte> key, Span<byte> destination)
    {
        if (!_keys.TryGetValue(Key(key), out var value))
            return -1;
        value.AsSpan(0, Math.Min(value.Length, destination.Length)).CopyTo(destination);
        return value.Length;
    }

    public byte[]? Get(ReadOnlySpan<byte> key) => _keys.TryGetValue(Key(key), out var v) ? v.ToArray() : null;

    public KvStatus Set(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        OnWrite?.Invoke();
        string k = Key(key);
        if (!_keys.ContainsKey(k) && Interlocked.Read(ref _bytes) + key.Length + value.Length > memoryLimit)
            return KvStatus.OutOfMemory;
        _keys[k] = value.ToArray();
        Interlocked.Add(ref _bytes, key.Length + value.Length);
        return KvStatus.Ok;
    }

    public bool? TryAdd(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        OnWrite?.Invoke();
        if (Interlocked.Read(ref _bytes) + key.Length + value.Length > memoryLimit)
            return null;
        Interlocked.Add(ref _bytes, key.Length + value.Length);
        return _keys.TryAdd(Key(key), value.ToArray());
    }

    public bool? TryUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ReadOnlySpan<byte> comparison)
    {
        OnWrite?.Invoke();
        string k = Key(key);
        return _keys.TryGetValue(k, out var current) && current.AsSpan().SequenceEqual(comparison)
            && _keys.TryUpdate(k, value.ToArray(), current);
    }

    public bool Delete(ReadOnlySpan<byte> key)
    {
        OnWrite?.Invoke();
        return _keys.TryRemove(Key(key), out _);
    }

    public long Count => _keys.Count;

    public bool Contains(string key) => _keys.ContainsKey(key);

    private static string Key(ReadOnlySpan<byte> key) => Convert.ToBase64String(key);
}
