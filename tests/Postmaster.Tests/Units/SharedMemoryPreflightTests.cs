using Postmaster.Configuration;
using Postmaster.Daemon;
using Xunit;

namespace Postmaster.Tests.Units;

/// <summary>The start-up comparison of the machine's shared-memory limits with what the configuration can need.</summary>
public sealed class SharedMemoryPreflightTests
{
    private const long MB = 1L << 20;
    private static readonly SharedMemoryPreflight.Facts Roomy = new(DevShmFreeBytes: 8192 * MB, ShmMaxBytes: long.MaxValue, ShmAllBytes: long.MaxValue, SysVInUseBytes: 0);

    [Fact]
    public void A_roomy_machine_gives_no_warning_for_any_combination_of_types()
    {
        foreach (var main in Enum.GetValues<SharedMemoryType>())
            foreach (var dsm in Enum.GetValues<DynamicSharedMemoryType>())
                Assert.Empty(SharedMemoryPreflight.Check(main, dsm, 512 * MB, Roomy));
    }

    [Fact]
    public void Dockers_64_MB_dev_shm_is_reported_with_the_numbers_and_the_fix()
    {
        var facts = Roomy with { DevShmFreeBytes = 64 * MB };
        var f = Assert.Single(SharedMemoryPreflight.Check(SharedMemoryType.Posix, DynamicSharedMemoryType.Posix, 40 * MB, facts));
        Assert.Equal("\"/dev/shm\" has 64 MB free, less than the 168 MB this configuration can need", f.Message);
        Assert.Contains("needs 40 MB there", f.Detail);
        Assert.Contains("dynamic_shared_memory_type = posix", f.Detail);
        Assert.Contains("--shm-size", f.Hint);
    }

    [Fact]
    public void Only_what_lives_in_dev_shm_counts_against_it()
    {
        var facts = Roomy with { DevShmFreeBytes = 100 * MB };
        // SysV main segment, POSIX DSM: only the DSM headroom counts (128 MB > 100 MB).
        var f = Assert.Single(SharedMemoryPreflight.Check(SharedMemoryType.SysV, DynamicSharedMemoryType.Posix, 4000 * MB, facts));
        Assert.Contains("less than the 128 MB", f.Message);
        Assert.DoesNotContain("main shared memory segment", f.Detail);
        // POSIX main segment that fits, DSM elsewhere: nothing.
        Assert.Empty(SharedMemoryPreflight.Check(SharedMemoryType.Posix, DynamicSharedMemoryType.SysV, 90 * MB, facts));
        Assert.Empty(SharedMemoryPreflight.Check(SharedMemoryType.SysV, DynamicSharedMemoryType.Mmap, 4000 * MB, facts));
    }

    [Fact]
    public void An_unreadable_dev_shm_is_said_when_posix_memory_needs_it()
    {
        var facts = Roomy with { DevShmFreeBytes = null };
        var f = Assert.Single(SharedMemoryPreflight.Check(SharedMemoryType.SysV, DynamicSharedMemoryType.Posix, MB, facts));
        Assert.Equal("could not determine the free space of \"/dev/shm\"", f.Message);
        Assert.Empty(SharedMemoryPreflight.Check(SharedMemoryType.SysV, DynamicSharedMemoryType.SysV, MB, facts));
    }

    [Fact]
    public void The_sysv_limits_are_checked_against_the_main_segment()
    {
        var facts = Roomy with { ShmMaxBytes = 32 * MB, ShmAllBytes = 64 * MB, SysVInUseBytes = 48 * MB };
        var findings = SharedMemoryPreflight.Check(SharedMemoryType.SysV, DynamicSharedMemoryType.SysV, 40 * MB, facts);
        Assert.Equal(2, findings.Count);
        Assert.Contains("kernel.shmmax = 33554432", findings[0].Message);
        Assert.Contains($"sysctl -w kernel.shmmax={40 * MB}", findings[0].Hint);
        Assert.Contains("more than the 16 MB System V shared memory left", findings[1].Message);
        Assert.Contains("48 MB in use", findings[1].Message);
        Assert.Contains($"sysctl -w kernel.shmall={88 * MB / Environment.SystemPageSize}", findings[1].Hint);
        // The same limits do not concern a POSIX main segment.
        Assert.Empty(SharedMemoryPreflight.Check(SharedMemoryType.Posix, DynamicSharedMemoryType.SysV, 40 * MB, facts));
    }

    [Fact]
    public void This_machine_can_be_observed()
    {
        var facts = SharedMemoryPreflight.Observe();
        Assert.NotNull(facts.DevShmFreeBytes);
        Assert.NotNull(facts.ShmMaxBytes);
        Assert.NotNull(facts.ShmAllBytes);
        Assert.NotNull(facts.SysVInUseBytes);
    }
}
