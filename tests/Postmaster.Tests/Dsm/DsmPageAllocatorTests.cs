using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Xunit;

namespace Postmaster.Tests.Dsm;

/// <summary>The main region's page allocator on its own (single-threaded, so no lock is needed), and main-region
/// segments through a session.</summary>
public sealed class DsmPageAllocatorTests
{
    private const int Pages = 256;

    [Fact]
    public void Freed_runs_coalesce_with_both_neighbours_into_one_run()
    {
        using var pm = new DsmTestInstance("fpm-coalesce", DsmType.Posix, mainRegion: Pages * DsmPageAllocator.PageSize);
        var fpm = pm.Instance.DsmMainRegion!;
        Assert.Equal(Pages, fpm.PageCount);
        Assert.Equal(1, fpm.FreeRunCount());
        int a = fpm.Allocate(10);
        int b = fpm.Allocate(20);
        int c = fpm.Allocate(30);
        Assert.Equal([0, 10, 30], new[] { a, b, c });
        Assert.Equal(Pages - 60, fpm.FreePages);
        fpm.Free(a, 10);
        fpm.Free(c, 30);                      // joins the tail run
        Assert.Equal(2, fpm.FreeRunCount());
        fpm.Free(b, 20);                      // joins both neighbours
        Assert.Equal(1, fpm.FreeRunCount());
        Assert.Equal(Pages, fpm.LargestFreeRun());
        Assert.Equal(Pages, fpm.FreePages);
    }

    [Fact]
    public void After_fragmentation_a_large_run_fits_again_once_its_neighbours_are_free()
    {
        using var pm = new DsmTestInstance("fpm-fragment", DsmType.Posix, mainRegion: Pages * DsmPageAllocator.PageSize);
        var fpm = pm.Instance.DsmMainRegion!;
        var runs = Enumerable.Range(0, Pages / 4).Select(_ => fpm.Allocate(4)).ToList();
        Assert.Equal(-1, fpm.Allocate(1));
        for (int i = 0; i < runs.Count; i += 2)
            fpm.Free(runs[i], 4);             // every other run: 32 holes of 4 pages
        Assert.Equal(Pages / 2, fpm.FreePages);
        Assert.Equal(4, fpm.LargestFreeRun());
        Assert.Equal(-1, fpm.Allocate(8));    // plenty free, nothing contiguous
        int small = fpm.Allocate(3);           // fits in a hole
        Assert.True(small >= 0);
        fpm.Free(small, 3);
        for (int i = 1; i < runs.Count; i += 2)
            fpm.Free(runs[i], 4);
        Assert.Equal(1, fpm.FreeRunCount());
        Assert.Equal(0, fpm.Allocate(Pages));  // the whole region again
        fpm.Free(0, Pages);
    }

    [Fact]
    public void Random_allocations_never_overlap_and_everything_coalesces_back()
    {
        using var pm = new DsmTestInstance("fpm-random", DsmType.Posix, mainRegion: 1024 * DsmPageAllocator.PageSize);
        var fpm = pm.Instance.DsmMainRegion!;
        var random = new Random(12345);
        var owner = new int[fpm.PageCount];    // 0 = free, else run id
        var live = new List<(int First, int Pages, int Id)>();
        int nextId = 1;
        for (int step = 0; step < 5000; step++)
        {
            if (live.Count > 0 && random.Next(3) == 0)
            {
                int k = random.Next(live.Count);
                var (first, pages, id) = live[k];
                live.RemoveAt(k);
                fpm.Free(first, pages);
                for (int p = first; p < first + pages; p++)
                {
                    Assert.Equal(id, owner[p]);
                    owner[p] = 0;
                }
            }
            else
            {
                int want = random.Next(4) == 0 ? random.Next(1, 200) : random.Next(1, 9);
                int first = fpm.Allocate(want);
                if (first < 0)
                {
                    Assert.True(LongestZeroRun(owner) < want, $"a run of {want} pages was free but not found");
                    continue;
                }
                for (int p = first; p < first + want; p++)
                {
                    Assert.Equal(0, owner[p]);
                    owner[p] = nextId;
                }
                live.Add((first, want, nextId++));
            }
            Assert.Equal(owner.Count(o => o == 0), fpm.FreePages);
        }
        foreach (var (first, pages, _) in live)
            fpm.Free(first, pages);
        Assert.Equal(1, fpm.FreeRunCount());
        Assert.Equal(fpm.PageCount, fpm.FreePages);
    }

    [Fact]
    public void Freeing_what_is_not_an_allocated_run_is_reported_as_corruption()
    {
        using var pm = new DsmTestInstance("fpm-corrupt", DsmType.Posix, mainRegion: 16 * DsmPageAllocator.PageSize);
        var fpm = pm.Instance.DsmMainRegion!;
        int a = fpm.Allocate(4);
        Assert.Throws<ShmemCorruptException>(() => fpm.Free(a, 3));
        fpm.Free(a, 4);
        Assert.Throws<ShmemCorruptException>(() => fpm.Free(a, 4)); // double free
        Assert.Equal(16, fpm.FreePages);
    }

    [Fact]
    public void Segments_carve_pages_from_the_main_region_and_fall_back_to_the_OS_when_it_is_full()
    {
        using var pm = new DsmTestInstance("fpm-fallback", DsmType.Posix, mainRegion: 64 * 1024);
        var a = pm.Session(0);
        var fpm = pm.Instance.DsmMainRegion!;
        var inRegion = Enumerable.Range(0, 4).Select(_ => a.Create(16 * 1024)!).ToList();
        Assert.All(inRegion, s => Assert.Equal(DsmImplementation.MainRegion, s.Implementation));
        Assert.Equal(0, fpm.FreePages);
        using var spilled = a.Create(4096)!;
        Assert.Equal(DsmImplementation.Posix, spilled.Implementation);
        var addresses = inRegion.Select(s => s.Address).Order().ToList();
        for (int i = 1; i < addresses.Count; i++)
            Assert.Equal(16 * 1024, addresses[i] - addresses[i - 1]);
        using var other = pm.Session(1).Attach(inRegion[2].Handle)!;
        inRegion[2].Region.Ref<long>(0) = 99;
        Assert.Equal(99, other.Region.Ref<long>(0));
        inRegion.ForEach(a.Detach);
        Assert.Equal(12, fpm.FreePages);      // inRegion[2] is still attached by the other session
        other.Dispose();
        Assert.Equal(16, fpm.FreePages);
        Assert.Equal(1, fpm.FreeRunCount());
    }

    private static int LongestZeroRun(int[] owner)
    {
        int best = 0, run = 0;
        foreach (int o in owner)
        {
            run = o == 0 ? run + 1 : 0;
            best = Math.Max(best, run);
        }
        return best;
    }
}
