using System.Globalization;
using Engine = Postmaster.Shmem.Dsm;

namespace Postmaster.Workers;

/// <summary>
/// The instance-wide name of a dynamic shared memory segment (PostgreSQL's dsm_handle): what processes pass each other,
/// as a number in shared memory or as text in a worker's argument, to attach the same segment
/// (<see cref="DynamicSharedMemory.Attach"/>). A handle of a segment destroyed since never finds its successor.
/// 0 is <see cref="Invalid"/>.
/// </summary>
public readonly struct DsmHandle : IEquatable<DsmHandle>
{
    /// <summary>No segment (0).</summary>
    public static readonly DsmHandle Invalid = default;

    /// <summary>A handle from its number (as <see cref="Value"/> gave it, e.g. read back from shared memory).</summary>
    /// <param name="value">The handle's number.</param>
    public DsmHandle(uint value) => Value = value;

    internal DsmHandle(Engine.DsmHandle value) => Value = value.Value;

    /// <summary>The handle's number: store this in shared memory.</summary>
    public uint Value { get; }

    /// <summary>False for <see cref="Invalid"/>.</summary>
    public bool IsValid => Value != 0;

    internal Engine.DsmHandle Inner => new(Value);

    /// <summary>Parses the decimal text <see cref="ToString"/> writes.</summary>
    /// <param name="text">Decimal digits only.</param>
    /// <exception cref="FormatException">Not a handle.</exception>
    /// <exception cref="OverflowException">Too large for a handle.</exception>
    public static DsmHandle Parse(string text) => new(uint.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture));

    /// <summary>Parses the decimal text <see cref="ToString"/> writes; false when it is not a handle.</summary>
    /// <param name="text">The text.</param>
    /// <param name="handle">The handle, or <see cref="Invalid"/>.</param>
    public static bool TryParse(string? text, out DsmHandle handle)
    {
        bool ok = uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint value);
        handle = new DsmHandle(value);
        return ok;
    }

    /// <summary>True when both are the same handle.</summary>
    /// <param name="other">The other handle.</param>
    public bool Equals(DsmHandle other) => Value == other.Value;

    /// <summary>True when <paramref name="obj"/> is the same handle.</summary>
    /// <param name="obj">The object to compare with.</param>
    public override bool Equals(object? obj) => obj is DsmHandle other && Equals(other);

    /// <summary>The handle's number as hash.</summary>
    public override int GetHashCode() => (int)Value;

    /// <summary>True when both are the same handle.</summary>
    /// <param name="left">One handle.</param>
    /// <param name="right">The other handle.</param>
    public static bool operator ==(DsmHandle left, DsmHandle right) => left.Value == right.Value;

    /// <summary>True when they differ.</summary>
    /// <param name="left">One handle.</param>
    /// <param name="right">The other handle.</param>
    public static bool operator !=(DsmHandle left, DsmHandle right) => left.Value != right.Value;

    /// <summary>The handle as decimal text (what <c>postmaster shmem</c> shows and <see cref="Parse"/> reads).</summary>
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}
