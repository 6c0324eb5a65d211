using Postmaster.Shmem;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Layout;
using Postmaster.Shmem.Segments;
using Postmaster.Tests.Dsm;
using Xunit;

namespace Postmaster.Tests.Integrity;

/// <summary>
/// Garbage over each structure the supervisor reads: <c>Validate()</c> names the structure and what is wrong,
/// <see cref="Shmem.Instance.InstanceShmem.Validate"/> reports it as the first problem, per-field reads stay inside the
/// segment (a <see cref="ShmemCorruptException"/> at worst, never an out-of-range access), and restoring the bytes
/// makes everything valid again. A real main segment (POSIX) with a preallocated DSM region and a DSM control segment.
/// </summary>
public sealed class ShmemValidationTests : IDisposable
{
    private const uint Garbage = 0xDEAD_BEEF;
    private readonly DsmTestInstance _pm = new("validate", DsmType.Posix, mainRegion: 1024 * 1024);

    public void Dispose() => _pm.Dispose();

    private ShmemRegion Segment => _pm.Main.Region;

    private ShmemRegion Module(string name)
    {
        Assert.True(_pm.Main.Index.TryFind(name, out var region), name);
        return region;
    }

    /// <summary>Writes <paramref name="value"/> at <paramref name="offset"/> of <paramref name="region"/>, checks that
    /// <paramref name="validate"/> starts with <paramref name="expected"/>, restores the word and checks it is valid again.</summary>
    private static void Corrupt(ShmemRegion region, long offset, uint value, Func<string?> validate, string expected)
    {
        ref uint word = ref region.Ref<uint>(offset);
        uint saved = word;
        word = value;
        try
        {
            var problem = validate();
            Assert.NotNull(problem);
            Assert.StartsWith(expected, problem);
        }
        finally
        {
            word = saved;
        }
        Assert.Null(validate());
    }

    [Fact]
    public void An_intact_instance_is_valid()
    {
        Assert.Null(_pm.Instance.Validate());
        Assert.Null(_pm.Control.Validate());
        Assert.Null(_pm.Main.Validate());
    }

    [Theory]
    [InlineData(0, Garbage, "main shared memory header: wrong magic number 0xDEADBEEF (expected 0x504D5348)")]
    [InlineData(4, 7u, "main shared memory header: wrong layout version 7 (expected 1)")]
    [InlineData(12, 64u, "main shared memory header: header size 64 (expected 128)")]
    [InlineData(16, 4096u, "main shared memory header: total size 4096 does not match the mapped segment")]
    [InlineData(24, 3u, "main shared memory header: free offset 3 is outside")]
    [InlineData(40, 12345u, "main shared memory header: the segment belongs to another data directory")]
    [InlineData(56, Garbage, "main shared memory header: index offset")]
    public void Garbage_over_the_main_header_is_named(long offset, uint value, string expected)
    {
        Corrupt(Segment, offset, value, _pm.Instance.Validate, expected);
        Corrupt(Segment, offset, value, () => MainHeader.Validate(Segment, _pm.DataDirStat), expected);
    }

    [Fact]
    public void Garbage_over_the_index_is_named_and_lookups_stay_inside_the_segment()
    {
        long index = Segment.Ref<MainHeader>(0).IndexOffset;
        Corrupt(Segment, index, Garbage, _pm.Instance.Validate,
            "shared memory index: wrong magic number 0xDEADBEEF (expected 0x504D4958)");
        Corrupt(Segment, index + 4, 9, _pm.Instance.Validate, "shared memory index: wrong layout version 9 (expected 1)");
        Corrupt(Segment, index + 12, int.MaxValue, _pm.Instance.Validate, "shared memory index: entry count 2147483647 is outside");
        const long FirstEntry = 64, EntryOffsetField = 64;
        Corrupt(Segment, index + FirstEntry + EntryOffsetField, Garbage, _pm.Instance.Validate,
            "shared memory index: entry 0 (\"LWLock tranches\") at offset 3735928559");

        ref int count = ref Segment.Ref<int>(index + 12);
        int saved = count;
        count = int.MaxValue;
        try
        {
            Assert.Throws<ShmemCorruptException>(() => _pm.Main.Index.TryFind("Backend slots", out _));
            Assert.Throws<ShmemCorruptException>(() => _pm.Main.Index.InitStruct("new one", 64, out _));
            Assert.NotEmpty(_pm.Main.Index.List()); // inspection reads what it can, within the index
        }
        finally
        {
            count = saved;
        }
        ref long entryOffset = ref Segment.Ref<long>(index + FirstEntry + EntryOffsetField);
        long savedOffset = entryOffset;
        entryOffset = long.MaxValue - 8;
        try
        {
            Assert.Throws<ShmemCorruptException>(() => _pm.Main.Index.TryFind("LWLock tranches", out _));
        }
        finally
        {
            entryOffset = savedOffset;
        }
        Assert.Null(_pm.Instance.Validate());
    }

    [Fact]
    public void A_module_whose_index_entry_moved_is_named()
    {
        long index = Segment.Ref<MainHeader>(0).IndexOffset;
        const long SecondEntryOffset = 64 + 128 + 64; // index header + entry 0, then the Offset field of entry 1
        ref long offset = ref Segment.Ref<long>(index + SecondEntryOffset);
        long saved = offset;
        offset += 64; // still inside the allocated space: only the placement check can tell
        try
        {
            Assert.StartsWith("shared memory index: \"LWLock owner records\" now names offset", _pm.Instance.Validate());
        }
        finally
        {
            offset = saved;
        }
        Assert.Null(_pm.Instance.Validate());
    }

    [Fact]
    public void Garbage_over_the_backend_slot_array_is_named_and_slot_reads_stay_bounded()
    {
        var slots = Module("Backend slots");
        var array = _pm.Instance.Slots;
        Corrupt(slots, 0, 0, array.Validate, "backend slot array: wrong magic number 0x00000000 (expected 0x504D4253)");
        Corrupt(slots, 0, Garbage, _pm.Instance.Validate, "backend slot array: wrong magic number 0xDEADBEEF (expected 0x504D4253)");
        Corrupt(slots, 4, 2, array.Validate, "backend slot array: wrong layout version 2 (expected 5)");
        Corrupt(slots, 12, 8, array.Validate, "backend slot array: slot size 8 (expected 1536)");
        Corrupt(slots, 8, 1000, array.Validate, "backend slot array: size");
        const long Slot2State = 64 + 2 * 1536;
        Corrupt(slots, Slot2State, Garbage, array.Validate, "backend slot array: slot 2 has state -559038737, which is not a slot state");
        Corrupt(slots, Slot2State + 24, 77, array.Validate, "backend slot array: slot 2 has pool word 77");

        // Per-field reads: a garbage count in the header does not move them, a garbage state is a specific exception.
        ref int declared = ref slots.Ref<int>(8);
        int savedCount = declared;
        declared = int.MaxValue;
        try
        {
            Assert.Equal(DsmTestInstance.DefaultMaxBackends, array.Count);
            Assert.Equal(BackendSlotState.Unused, array.StateOf(array.Count - 1));
            Assert.Throws<ArgumentOutOfRangeException>(() => array.StateOf(array.Count));
        }
        finally
        {
            declared = savedCount;
        }
        ref int state = ref slots.Ref<int>(Slot2State);
        state = unchecked((int)Garbage);
        try
        {
            var e = Assert.Throws<ShmemCorruptException>(() => array.StateOf(2));
            Assert.Equal("backend slot array: slot 2 has state -559038737, which is not a slot state", e.Message);
            Assert.Equal(0, array.PidOf(2));
            Assert.Equal(2, array.Read(2).Slot); // inspection still reads the slot
        }
        finally
        {
            state = 0;
        }
        Assert.Null(_pm.Instance.Validate());
    }

    [Fact]
    public void Garbage_over_the_worker_request_queue_is_named()
    {
        var queue = Module("Worker requests");
        Corrupt(queue, 0, Garbage, _pm.Instance.Validate, "worker request queue: wrong magic number 0xDEADBEEF (expected 0x504D5251)");
        Corrupt(queue, 4, 1, _pm.Instance.Requests.Validate, "worker request queue: wrong layout version 1 (expected 2)");
        Corrupt(queue, 8, 3, _pm.Instance.Requests.Validate, "worker request queue: size");
        Corrupt(queue, 28, 5, _pm.Instance.Requests.Validate, "worker request queue: listening flag 5 is not 0 or 1");
        const long Entry5State = 64 + 5 * 2048;
        Corrupt(queue, Entry5State, 99, _pm.Instance.Requests.Validate, "worker request queue: entry 5 has state 99");
        Assert.Equal(WorkerRequestQueue.DefaultCapacity, _pm.Instance.Requests.Capacity);

        // A submitted entry of an unknown kind is the requester's error, not corrupt memory: answered as failed,
        // never acted on.
        queue.Ref<int>(Entry5State + 4) = 42;
        queue.Ref<int>(Entry5State) = WorkerRequestQueue.Submitted;
        Assert.Null(_pm.Instance.Requests.Validate());
        Assert.Empty(_pm.Instance.Requests.TakeSubmitted());
        Assert.Equal(WorkerRequestQueue.Failed, queue.Ref<int>(Entry5State));
        queue.Ref<int>(Entry5State) = WorkerRequestQueue.Free;
        Assert.Null(_pm.Instance.Validate());
    }

    [Fact]
    public void Garbage_over_the_lock_tables_is_named()
    {
        var owners = Module("LWLock owner records");
        Corrupt(owners, 0, Garbage, _pm.Instance.Validate, "lock owner table: Magic number 0xDEADBEEF does not match 0x4C4F4D50.");
        const long Slot3 = 64 + 3 * 3264;
        const long Slot3Entry0TagHigh = Slot3 + 64 + 8 + 4; // tranche (2 bytes), mode, phase
        Corrupt(owners, Slot3Entry0TagHigh, 0x0901_0000, _pm.Instance.Owners.Validate, "lock owner table: slot 3 entry 0 has phase 9 (expected 1 or 2)");
        Corrupt(owners, Slot3Entry0TagHigh, 0x0107_0000, _pm.Instance.Owners.Validate, "lock owner table: slot 3 entry 0 has lock mode 7 (expected 1 or 2)");
        Corrupt(owners, Slot3 + 8, Garbage, _pm.Instance.Owners.Validate, "lock owner table: slot 3 records critical-section depth");

        var tranches = Module("LWLock tranches");
        Corrupt(tranches, 0, Garbage, _pm.Instance.Validate, "lock tranche table: Magic number 0xDEADBEEF does not match 0x52544D50.");
        const long FirstBuiltinLockMagic = 64 + 4;
        Corrupt(tranches, FirstBuiltinLockMagic, 0, _pm.Instance.Tranches.Validate, "lock tranche table: built-in lock");
    }

    [Fact]
    public void Garbage_over_the_dsm_registry_and_the_preallocated_region_is_named()
    {
        Corrupt(Module("DSM registry"), 0, Garbage, _pm.Instance.Validate, "DSM registry: Magic number 0xDEADBEEF does not match 0x52474D50.");
        Corrupt(Module("Preallocated DSM"), 0, Garbage, _pm.Instance.Validate,
            "preallocated DSM region: wrong magic number 0xDEADBEEF (expected 0x41504D50)");
    }

    [Fact]
    public void Garbage_over_the_dsm_control_segment_is_named()
    {
        using var raw = MappedSegment.AttachPosix($"/pm.{_pm.Config.Tag}.ctl.{_pm.Control.Handle}")!;
        var control = raw.Region;
        Corrupt(control, 0, Garbage, _pm.Control.Validate, "DSM control segment: wrong magic number 0xDEADBEEF (expected 0x53444D50)");
        Corrupt(control, 16, 12345, _pm.Control.Validate, "DSM control segment: object header");
        Corrupt(control, DsmSegmentHeader.Size, Garbage, _pm.Control.Validate,
            "DSM control segment: Magic number 0xDEADBEEF does not match 0x43544D50.");
        Corrupt(control, DsmSegmentHeader.Size + 16, int.MaxValue, _pm.Control.Validate, "DSM control segment: Item count 2147483647");
    }
}
