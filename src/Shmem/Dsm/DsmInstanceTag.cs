using System.Globalization;
using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// A 64-bit value unique to one instance (one data directory) on this host, derived from the data directory's
/// device and inode. Every OS object of the instance's dynamic shared memory carries it: in its POSIX name
/// ("/pm.TAG.HANDLE"), in its SysV key (a hash of tag and handle) and in its <see cref="DsmSegmentHeader"/>. Two
/// instances on one host therefore never collide, and a starting supervisor can find and remove everything a dead
/// instance of the same data directory left, even when no table lists it.
/// </summary>
internal readonly record struct DsmInstanceTag(ulong Value)
{
    /// <summary>The tag of the data directory whose stat is <paramref name="dataDir"/>.</summary>
    public static DsmInstanceTag From(FileStat dataDir) =>
        new(Mix(dataDir.Device * 0x9E37_79B9_7F4A_7C15UL ^ Mix(dataDir.Inode)));

    /// <summary>16 lower-case hex digits, as in object names.</summary>
    public override string ToString() => Value.ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>The splitmix64 finaliser: a bijection that spreads every input bit over the whole word.</summary>
    internal static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EBUL;
        return z ^ (z >> 31);
    }
}
