using System.Runtime.InteropServices;
using Postmaster.Shmem;
using Postmaster.Shmem.Layout;

namespace Postmaster.Supervision;

/// <summary>Crash recovery since the postmaster started: full crash restarts done (shared memory rebuilt) and backend
/// crashes reconciled (<see cref="CrashRecovery"/>).</summary>
public readonly record struct RecoveryTotals(long FullRestarts, long Reconciles);

/// <summary>
/// The postmaster's published crash-recovery totals ("Recovery counters" in the main segment), for <c>status</c>.
/// The truth is <see cref="CrashRecovery"/>'s, private to the postmaster, which outlives every segment; this is a copy
/// the loop rewrites after each reconcile and into each rebuilt segment before the server says ready again, so a
/// reader that sees <c>ready</c> sees the restart that led there. One writer (the postmaster's loop thread), any
/// number of readers; each total is one aligned word, read on its own (the two need not be read together).
/// Validated by every reader: magic, layout version, size.
/// </summary>
internal static class RecoveryCountersTable
{
    public const string Name = "Recovery counters";
    public const int Bytes = 64;
    private const uint Magic = 0x504D_5243; // "PMRC"
    private const uint LayoutVersion = 1;

    [StructLayout(LayoutKind.Explicit, Size = Bytes)]
    internal struct Layout
    {
        [FieldOffset(0)] public uint Magic;
        [FieldOffset(4)] public uint LayoutVersion;
        [FieldOffset(8)] public long Size;
        [FieldOffset(16)] public long FullRestarts;  // written by the postmaster only
        [FieldOffset(24)] public long Reconciles;    // written by the postmaster only
    }

    /// <summary>The plan's request: zeroed totals, published header.</summary>
    public static ShmemRequest Request { get; } = new(Name, Bytes, (region, _) =>
    {
        ref var t = ref region.Ref<Layout>(0);
        t.Size = Bytes;
        t.LayoutVersion = LayoutVersion;
        Volatile.Write(ref t.Magic, Magic);
    });

    /// <summary>Writes <paramref name="totals"/> into the segment behind <paramref name="index"/> (postmaster only).
    /// Throws ShmemCorruptException when the table is missing or invalid.</summary>
    public static void Publish(ShmemIndex index, RecoveryTotals totals)
    {
        if (Problem(index, out var region) is { } problem)
            throw new Shmem.Errors.ShmemCorruptException(problem);
        ref var t = ref region.Ref<Layout>(0);
        Volatile.Write(ref t.FullRestarts, totals.FullRestarts);
        Volatile.Write(ref t.Reconciles, totals.Reconciles);
    }

    /// <summary>The published totals, or null when the segment has no valid table (an older server, or damage).</summary>
    public static RecoveryTotals? Read(ShmemIndex index)
    {
        if (Problem(index, out var region) is not null)
            return null;
        ref var t = ref region.Ref<Layout>(0);
        return new RecoveryTotals(Volatile.Read(ref t.FullRestarts), Volatile.Read(ref t.Reconciles));
    }

    /// <summary>What is wrong with the table, or null (then <paramref name="region"/> is where it is).</summary>
    private static string? Problem(ShmemIndex index, out ShmemRegion region)
    {
        if (!index.TryFind(Name, out region))
            return $"{ShmemIndex.StructureName}: \"{Name}\" is missing";
        if (region.Size < Bytes)
            return $"recovery counters: region of {region.Size} bytes is too small ({Bytes} bytes)";
        var t = region.Ref<Layout>(0);
        if (t.Magic != Magic)
            return $"recovery counters: wrong magic number 0x{t.Magic:X8} (expected 0x{Magic:X8})";
        if (t.LayoutVersion != LayoutVersion || t.Size != Bytes)
            return $"recovery counters: layout version {t.LayoutVersion}, size {t.Size} (expected {LayoutVersion}, {Bytes})";
        return null;
    }
}
