using Postmaster.Shmem.Errors;
using Engine = Postmaster.Shmem.Registry;

namespace Postmaster.Workers;

/// <summary>
/// The DSM registry (<see cref="WorkerContext.Registry"/>; PostgreSQL's GetNamedDSMSegment): dynamic shared memory
/// known by name to every process of the instance, created and initialised exactly once. Named segments outlive the
/// worker that made them, until <see cref="Release"/>, shutdown or a crash restart. Safe to use from any thread of the
/// worker. Names are at most 63 bytes of UTF-8.
/// <para>Errors are <see cref="ShmemException"/> with PostgreSQL's messages: <c>DSM segment name cannot be empty</c>,
/// <c>DSM segment name too long</c>, <c>DSM segment size must be nonzero</c>, <c>requested DSM segment size does not
/// match size of existing segment</c>.</para>
/// </summary>
public sealed class DsmRegistry
{
    private readonly Engine.DsmRegistry _registry;

    internal DsmRegistry(Engine.DsmRegistry registry) => _registry = registry;

    /// <summary>
    /// The segment registered as <paramref name="name"/>, created with <paramref name="size"/> bytes on first use in
    /// the instance. The first caller gets a zeroed segment, runs <paramref name="init"/> on it before anyone else can
    /// see it, and gets <paramref name="found"/> = false; every other caller, concurrent or later, waits until that has
    /// finished and gets the same segment with <paramref name="found"/> = true. If <paramref name="init"/> throws (or
    /// its process dies), the exception propagates, nothing is registered, and the next caller initialises again. The
    /// mapping lasts until this process exits or releases the name. No registry lock is held while
    /// <paramref name="init"/> runs: it may take locks and register other names.
    /// </summary>
    /// <param name="name">The name, 1 to 63 bytes of UTF-8.</param>
    /// <param name="size">Bytes; every caller must ask for the same size.</param>
    /// <param name="init">Initialises the zeroed segment, once in the instance; null: zeroes are enough.</param>
    /// <param name="found">False for the caller that created the segment.</param>
    /// <param name="cancellationToken">Ends a wait for another process's initialisation (not this process's own
    /// <paramref name="init"/>).</param>
    /// <returns>The name and this process's mapping.</returns>
    public NamedSegment GetNamedSegment(string name, long size, Action<ShmemRegion>? init, out bool found,
        CancellationToken cancellationToken = default)
    {
        Action<Postmaster.Shmem.ShmemRegion>? engineInit = init is null ? null : region => init(new ShmemRegion(region));
        var named = _registry.GetNamedSegment(name, size, engineInit, out found, cancellationToken);
        return new NamedSegment(named.Name, DsmSegment.For(named.Segment));
    }

    /// <summary>
    /// The shared area registered as <paramref name="name"/> (PostgreSQL 19's GetNamedDSA): created on first use in the
    /// instance (<paramref name="found"/> = false) with a 1 MiB first segment, attached everywhere else, with the
    /// exactly-once rules of <see cref="GetNamedSegment"/>. It lives until <see cref="Release"/> (which destroys it),
    /// shutdown or a crash restart. A name that holds something else is an error (<c>requested DSM segment does not
    /// match type of existing entry</c>).
    /// </summary>
    /// <param name="name">The name, 1 to 63 bytes of UTF-8.</param>
    /// <param name="found">False for the caller that created it.</param>
    /// <param name="cancellationToken">Ends a wait for another process's initialisation.</param>
    public SharedArea GetNamedArea(string name, out bool found, CancellationToken cancellationToken = default) =>
        SharedArea.For(_registry.GetNamedArea(name, out found, cancellationToken));

    /// <summary>
    /// The shared hash table registered as <paramref name="name"/> (PostgreSQL 19's GetNamedDSHash), in an area of its
    /// own: created empty on first use (<paramref name="found"/> = false), attached everywhere else. Every caller must
    /// give the same key parameters (<see cref="ShmemException"/> otherwise). <see cref="Release"/> destroys it.
    /// </summary>
    /// <param name="name">The name, 1 to 63 bytes of UTF-8.</param>
    /// <param name="keySize">Bytes of every key; 0: keys of 1 to <paramref name="maxKeyLength"/> bytes.</param>
    /// <param name="found">False for the caller that created it.</param>
    /// <param name="maxKeyLength">With <paramref name="keySize"/> 0, the longest key.</param>
    /// <param name="cancellationToken">Ends a wait for another process's initialisation.</param>
    public SharedHashTable GetNamedHashTable(string name, int keySize, out bool found,
        int maxKeyLength = SharedHashTable.DefaultMaxKeyLength, CancellationToken cancellationToken = default) =>
        SharedHashTable.For(_registry.GetNamedHashTable(name, keySize, keySize == 0 ? maxKeyLength : keySize, out found, cancellationToken));

    /// <summary><see cref="GetNamedHashTable"/> for unmanaged key and value structs.</summary>
    /// <typeparam name="TKey">The key struct.</typeparam>
    /// <typeparam name="TValue">The value struct.</typeparam>
    /// <param name="name">The name, 1 to 63 bytes of UTF-8.</param>
    /// <param name="found">False for the caller that created it.</param>
    /// <param name="cancellationToken">Ends a wait for another process's initialisation.</param>
    public SharedHashTable<TKey, TValue> GetNamedHashTable<TKey, TValue>(string name, out bool found, CancellationToken cancellationToken = default)
        where TKey : unmanaged
        where TValue : unmanaged =>
        SharedHashTable<TKey, TValue>.Wrap(GetNamedHashTable(name, System.Runtime.CompilerServices.Unsafe.SizeOf<TKey>(), out found,
            cancellationToken: cancellationToken));

    /// <summary>
    /// Drops <paramref name="name"/> from the registry: waits while another process initialises it, then removes the
    /// entry, detaches this process's mapping and removes the pin, so the segment is destroyed once no process has it
    /// attached. Other processes keep their mappings until they detach or exit; a later
    /// <see cref="GetNamedSegment"/> of the name creates a new segment.
    /// </summary>
    /// <param name="name">The name.</param>
    /// <param name="cancellationToken">Ends a wait for another process's initialisation.</param>
    /// <returns>False when the name is not registered.</returns>
    public bool Release(string name, CancellationToken cancellationToken = default) => _registry.Release(name, cancellationToken);

    /// <summary>Every name in the registry with its state (a racy snapshot: no lock is taken).</summary>
    public IReadOnlyList<DsmRegistryEntryInfo> List()
    {
        var rows = _registry.List();
        var result = new DsmRegistryEntryInfo[rows.Count];
        for (int i = 0; i < result.Length; i++)
        {
            var r = rows[i];
            result[i] = new DsmRegistryEntryInfo(r.Name, (DsmRegistryEntryState)r.State, new DsmHandle(r.Handle), r.Size, r.OwnerPid,
                r.InitialisedByPid, r.Attempts, r.Waiters, r.Changed, (DsmRegistryEntryType)r.Type, r.TotalSize);
        }
        return result;
    }
}
