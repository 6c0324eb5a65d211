using Postmaster.Shmem.Area;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Locks;

namespace Postmaster.Shmem.Registry;

/// <summary>
/// The registry's typed entries (PostgreSQL 19's GetNamedDSA and GetNamedDSHash): a name can hold a shared area, or a
/// shared hash table in an area of its own, with the same exactly-once initialisation as a segment. The entry's
/// segment is the area's first segment; the area's other segments are pinned by the area, so releasing such a name
/// destroys the whole area.
/// </summary>
internal sealed partial class DsmRegistry
{
    /// <summary>What a named hash table keeps in its area's root.</summary>
    internal const int HashTableRootKind = 1;

    /// <summary>PostgreSQL's GetNamedDSA: the area registered as <paramref name="name"/>, created on first use in the
    /// instance (found = false) with a first segment of <see cref="SharedArea.DefaultInitialSegmentSize"/>.</summary>
    public SharedArea GetNamedArea(string name, out bool found, CancellationToken cancellationToken = default)
    {
        var named = GetNamed(name, SharedArea.DefaultInitialSegmentSize, DsmRegistryEntryType.Area,
            (segment, index) => FormatNamedArea(segment, index).TotalSize, out found, cancellationToken);
        var area = SharedArea.AttachSegment(_dsm, _owner, named.Segment);
        area.CheckUsable();
        return area;
    }

    /// <summary>PostgreSQL's GetNamedDSHash: the hash table registered as <paramref name="name"/>, created in an area of
    /// its own on first use (found = false). Every caller must give the same key size (0: variable keys of up to
    /// <paramref name="maxKeyLength"/> bytes).</summary>
    public SharedHashTable GetNamedHashTable(string name, int keySize, int maxKeyLength, out bool found,
        CancellationToken cancellationToken = default)
    {
        var named = GetNamed(name, SharedArea.DefaultInitialSegmentSize, DsmRegistryEntryType.HashTable, (segment, index) =>
        {
            var area = FormatNamedArea(segment, index);
            var made = SharedHashTable.Create(area, keySize, maxKeyLength);
            area.SetRoot(made.Pointer, HashTableRootKind);
            area.RootObject = made;
            return area.TotalSize;
        }, out found, cancellationToken);
        var attached = SharedArea.AttachSegment(_dsm, _owner, named.Segment);
        attached.CheckUsable();
        if (Volatile.Read(ref attached.RootObject) is not SharedHashTable table)
        {
            var (root, kind) = attached.Root;
            if (kind != HashTableRootKind || root.IsNull)
                throw new ShmemCorruptException($"DSM registry entry \"{name}\" holds no hash table",
                    $"Its area's root is {root} of kind {kind}.");
            var made = SharedHashTable.Attach(attached, root);
            table = (SharedHashTable)(Interlocked.CompareExchange(ref attached.RootObject, made, null) ?? made);
        }
        if (table.KeySize != keySize || (keySize == 0 && table.MaxKeyLength != maxKeyLength))
            throw new ShmemException("requested shared hash table parameters do not match the existing table",
                $"\"{name}\" has key size {table.KeySize} (longest key {table.MaxKeyLength}); key size {keySize} (longest key {maxKeyLength}) was requested.");
        return table;
    }

    private SharedArea FormatNamedArea(DsmSegment segment, int index)
    {
        SharedArea.Format(segment, _tranches.Register(_owner, SharedArea.TrancheName), long.MaxValue, SharedArea.DefaultMaxSegmentSize);
        var area = SharedArea.AttachSegment(_dsm, _owner, segment);
        area.SetRegistryEntry(index);
        return area;
    }

    /// <summary>Drops a segment the registry no longer lists (a released name's, a failed or dead initialiser's): for an
    /// area or hash table the area is destroyed first (every segment's pin removed), then the segment's own pin and this
    /// process's mapping (unless <paramref name="detachMine"/> is false: a dead owner's segment this process never had).</summary>
    private void DropPending(uint handle, DsmRegistryEntryType type, bool detachMine = true)
    {
        if (handle == 0)
            return;
        if (type != DsmRegistryEntryType.Segment)
        {
            try
            {
                SharedArea.Attach(_dsm, _owner, new DsmHandle(handle), evenIfDestroyed: true).Destroy(byRegistry: true);
            }
            catch (ShmemException)
            {
                // gone, never formatted (its initialiser died first) or damaged: its own segment is still dropped below
            }
        }
        if (detachMine)
            DropSegment(handle);
        else
            _dsm.UnpinIfPinned(new DsmHandle(handle));
    }

    /// <summary>Records that the area of entry <paramref name="index"/> (first segment <paramref name="handle"/>) now has
    /// <paramref name="totalSize"/> bytes, for the registry's size column. Called by the area as it grows, with the
    /// area lock held (lock order: area, then registry). Does nothing if the entry no longer holds that area.</summary>
    internal static void RecordTotalSize(InstanceShmem instance, LockOwner owner, int index, uint handle, long totalSize)
    {
        var table = instance.DsmRegistryTable;
        if ((uint)index >= (uint)table.Capacity)
            return;
        var lwlock = instance.Tranches.Builtin(BuiltinLWLock.DsmRegistry);
        owner.Acquire(lwlock, LWLockMode.Exclusive);
        try
        {
            ref var e = ref table.Entry(index);
            if (e.State != DsmRegistryEntryState.Ready || e.Handle != handle || e.Type == DsmRegistryEntryType.Segment)
                return;
            DsmRegistryTable.BeginWrite(ref e);
            e.TotalSize = totalSize;
            DsmRegistryTable.EndWrite(ref e);
        }
        finally
        {
            owner.Release(lwlock);
        }
    }

    private static string Describe(DsmRegistryEntryType type) => type switch
    {
        DsmRegistryEntryType.Area => "a shared area",
        DsmRegistryEntryType.HashTable => "a shared hash table",
        _ => "a segment",
    };
}
