namespace KeyValue;

/// <summary>The outcome of a write.</summary>
public enum KvStatus
{
    /// <summary>Done.</summary>
    Ok,

    /// <summary>The key is longer than <see cref="KvLimits.MaxKeyLength"/>; nothing changed.</summary>
    KeyTooLarge,

    /// <summary>The value is longer than <see cref="KvLimits.MaxValueLength"/>; nothing changed.</summary>
    ValueTooLarge,

    /// <summary>The new key would take the server over its memory limit; nothing changed.</summary>
    OutOfMemory,

    /// <summary>INCR of a value that is not a 64-bit decimal integer in canonical form; nothing changed.</summary>
    NotAnInteger,

    /// <summary>INCR of <see cref="long.MaxValue"/>; nothing changed.</summary>
    Overflow,
}

/// <summary>What the server stores.</summary>
public static class KvLimits
{
    /// <summary>Longest key in bytes.</summary>
    public const int MaxKeyLength = 1024;

    /// <summary>Longest value in bytes: 512 KiB.</summary>
    public const int MaxValueLength = 512 * 1024;
}
