using Postmaster.Shmem.Errors;

namespace Postmaster.Shmem.Layout;

/// <summary>Overflow-checked size arithmetic (PostgreSQL's add_size/mul_size) and alignment helpers.</summary>
internal static class ShmemSize
{
    public const int CacheLineSize = 64;
    public const int PageSize = 4096;

    public static long Add(long a, long b)
    {
        if (a < 0 || b < 0 || a > long.MaxValue - b)
            throw Overflow();
        return a + b;
    }

    public static long Multiply(long a, long b)
    {
        if (a < 0 || b < 0)
            throw Overflow();
        if (a == 0 || b == 0)
            return 0;
        if (a > long.MaxValue / b)
            throw Overflow();
        return a * b;
    }

    public static long AlignUp(long value, long alignment)
    {
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(alignment), $"alignment {alignment} is not a power of two");
        return Add(value, alignment - 1) & ~(alignment - 1);
    }

    public static long CacheLineAlign(long value) => AlignUp(value, CacheLineSize);

    private static ShmemException Overflow() => new("requested shared memory size overflows the 64-bit size type");
}
