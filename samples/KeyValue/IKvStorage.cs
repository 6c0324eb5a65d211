namespace KeyValue;

/// <summary>
/// The keys and values <see cref="KvCommands"/> works on. In the server, a named shared hash table that every backend
/// process of the instance sees (<see cref="SharedKvStorage"/>); in the tests, a dictionary. Every operation is atomic
/// on its key; none spans keys.
/// </summary>
public interface IKvStorage
{
    /// <summary>Copies the value of <paramref name="key"/> into <paramref name="destination"/> (as much as fits).</summary>
    /// <returns>The value's whole length, or -1 when the key is absent.</returns>
    int Read(ReadOnlySpan<byte> key, Span<byte> destination);

    /// <summary>The value of <paramref name="key"/>, or null when absent (for values larger than a read buffer).</summary>
    byte[]? Get(ReadOnlySpan<byte> key);

    /// <summary>Inserts or replaces.</summary>
    KvStatus Set(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value);

    /// <summary>Inserts only if absent: false when present, null when there is no memory for it (nothing changed).</summary>
    bool? TryAdd(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value);

    /// <summary>Replaces the value only if it is <paramref name="comparison"/> now: false when it is not, null when
    /// there is no memory for the new value (nothing changed).</summary>
    bool? TryUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ReadOnlySpan<byte> comparison);

    /// <summary>Removes <paramref name="key"/>; false when absent.</summary>
    bool Delete(ReadOnlySpan<byte> key);

    /// <summary>Keys now.</summary>
    long Count { get; }
}
