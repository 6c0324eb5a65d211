using System.Globalization;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// The instance-wide name of a dynamic shared memory segment: what processes pass each other (in a parameter block,
/// in shared memory) to attach the same segment. 0 is <see cref="Invalid"/>.
/// <para>Encoding (disjoint bit fields; the index width depends on the control segment's capacity, see
/// <see cref="DsmHandleCodec"/>): <c>[31 .. 1+w] generation | [w .. 1] item index | [0] main-region flag</c>.
/// The item index makes lookup O(1); the generation, bumped every time the item is freed, makes a stale handle
/// (of a segment destroyed since) miss instead of finding its successor; bit 0 tells main-region segments (carved
/// from "Preallocated DSM", no OS object) from OS-backed ones. Generations start at 1, so no handle is 0.</para>
/// </summary>
internal readonly record struct DsmHandle(uint Value)
{
    public static readonly DsmHandle Invalid = default;

    /// <summary>Bit 0: the segment lives in the main segment's preallocated region.</summary>
    internal const uint MainRegionBit = 1;

    public bool IsValid => Value != 0;

    /// <summary>True for segments carved from the main segment's preallocated region (no OS object).</summary>
    public bool IsMainRegion => (Value & MainRegionBit) != 0;

    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);

    public static DsmHandle Parse(string text) => new(uint.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture));
}

/// <summary>
/// Packs and unpacks <see cref="DsmHandle"/> fields for one control segment, whose capacity fixes the index width
/// (<see cref="IndexBits"/> = bits needed for capacity - 1, at least 1). The generation gets the remaining
/// 31 - IndexBits bits; <see cref="DsmControlLayout.MaxCapacity"/> keeps that at 11 bits or more.
/// </summary>
internal readonly struct DsmHandleCodec
{
    public DsmHandleCodec(int indexBits)
    {
        if (indexBits < 1 || indexBits > 30)
            throw new ArgumentOutOfRangeException(nameof(indexBits), indexBits, "the handle index width must be 1..30 bits");
        IndexBits = indexBits;
        IndexMask = (1u << indexBits) - 1;
        MaxGeneration = (1u << (31 - indexBits)) - 1;
    }

    public int IndexBits { get; }

    public uint IndexMask { get; }

    /// <summary>Largest generation; the one after it is 1 again (0 is never used).</summary>
    public uint MaxGeneration { get; }

    /// <summary>Index bits needed for <paramref name="capacity"/> items.</summary>
    public static int IndexBitsFor(int capacity) => Math.Max(1, 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)capacity - 1));

    public uint Encode(int index, uint generation, bool mainRegion) =>
        (generation << (IndexBits + 1)) | ((uint)index << 1) | (mainRegion ? DsmHandle.MainRegionBit : 0);

    public int IndexOf(uint handle) => (int)((handle >> 1) & IndexMask);

    public uint GenerationOf(uint handle) => handle >> (IndexBits + 1);

    public uint NextGeneration(uint generation) => generation >= MaxGeneration ? 1 : generation + 1;
}
