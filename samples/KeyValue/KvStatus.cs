namespace KeyValue;

/// <summary>The outcome of a <see cref="KvTable"/> write.</summary>
public enum KvStatus
{
    /// <summary>Done.</summary>
    Ok,

    /// <summary>The key is longer than <see cref="KvTable.MaxKeyLength"/>; nothing changed.</summary>
    KeyTooLarge,

    /// <summary>The value is longer than <see cref="KvTable.MaxValueLength"/>; nothing changed.</summary>
    ValueTooLarge,

    /// <summary>The key is new and its partition has no free slot; nothing changed.</summary>
    TableFull,

    /// <summary>INCR of a value that is not a 64-bit decimal integer in canonical form; nothing changed.</summary>
    NotAnInteger,

    /// <summary>INCR of <see cref="long.MaxValue"/>; nothing changed.</summary>
    Overflow,
}
