using Postmaster.Workers;

namespace KeyValue;

/// <summary>
/// Where <see cref="KvCommands"/> finds the table and how it locks a partition of it: in the server, a named DSM
/// segment and one named lock per partition (<see cref="SharedKvStorage"/>); in the tests, a byte array and no locks.
/// </summary>
public interface IKvStorage
{
    /// <summary>The table, its header checked (a few compares: cheap enough on every command).</summary>
    KvTable Table { get; }

    /// <summary>Takes the lock of <paramref name="partition"/>; dispose the hold to release it.</summary>
    /// <param name="partition">0 .. <see cref="KvTable.PartitionCount"/>-1, from <see cref="KvTable.PartitionOf"/>.</param>
    /// <param name="mode">Shared to read, exclusive to write.</param>
    LWLockHold Hold(int partition, LWLockMode mode);
}
