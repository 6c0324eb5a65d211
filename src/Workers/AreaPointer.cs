namespace Postmaster.Workers;

/// <summary>
/// A block's position in a <see cref="SharedArea"/> that means the same in every process (PostgreSQL's dsa_pointer):
/// store <see cref="Value"/> in shared memory, never an address. <see cref="SharedArea.Region(AreaPointer)"/> turns it
/// into this process's view of the block. The default value is the null pointer.
/// </summary>
/// <param name="Value">The encoded segment index and offset; 0 is null.</param>
public readonly record struct AreaPointer(ulong Value)
{
    /// <summary>The null pointer.</summary>
    public static AreaPointer Null => default;

    /// <summary>True for the null pointer.</summary>
    public bool IsNull => Value == 0;

    /// <summary>"segment:offset", or "null".</summary>
    public override string ToString() => new Postmaster.Shmem.Area.AreaPointer(Value).ToString();
}
