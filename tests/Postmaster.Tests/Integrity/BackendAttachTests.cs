using Postmaster.Shmem;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Layout;
using Postmaster.Shmem.Os;
using Postmaster.Testing;
using Postmaster.Tests.Dsm;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Integrity;

/// <summary>
/// The real pm-backend executable started against shared memory with garbage in one structure (the test plays the
/// postmaster: it creates the instance, assigns the slot and passes the parameter block on descriptor 3): the backend
/// logs exactly one FATAL line naming what is invalid and exits with <see cref="BackendExitCodes.ShmemInvalid"/>.
/// An intact instance is the control: the backend attaches, runs, and stops on SIGTERM.
/// </summary>
[Collection(DsmProcessCollection.Name)]
public sealed class BackendAttachTests : IDisposable
{
    private const uint Garbage = 0xDEAD_BEEF;
    private const int Slot = 0;
    private const long Generation = 7;
    private readonly DsmTestInstance _pm = new("backend-attach", DsmType.Posix);

    public void Dispose() => _pm.Dispose();

    public static TheoryData<string, string> Structures => new()
    {
        { "main header", "main shared memory header: wrong magic number 0xDEADBEEF (expected 0x504D5348)" },
        { "index", "shared memory index: wrong magic number 0xDEADBEEF (expected 0x504D4958)" },
        { "Backend slots", "backend slot array: wrong magic number 0xDEADBEEF (expected 0x504D4253)" },
        { "Worker requests", "worker request queue: wrong magic number 0xDEADBEEF (expected 0x504D5251)" },
        { "LWLock owner records", "lock owner table is corrupt: Magic number 0xDEADBEEF does not match 0x4C4F4D50." },
        { "LWLock tranches", "lock tranche table is corrupt: Magic number 0xDEADBEEF does not match 0x52544D50." },
        { "DSM registry", "DSM registry is corrupt: Magic number 0xDEADBEEF does not match 0x52474D50." },
    };

    [Theory]
    [MemberData(nameof(Structures))]
    public void A_backend_attaching_memory_with_a_corrupt_structure_exits_3_with_one_FATAL_line(string structure, string problem)
    {
        var region = structure switch
        {
            "main header" => _pm.Main.Region,
            "index" => _pm.Main.Region.Slice(_pm.Main.Header.IndexOffset, 64),
            _ => Find(structure),
        };
        ref uint magic = ref region.Ref<uint>(0);
        uint saved = magic;
        magic = Garbage;
        try
        {
            var (exit, output) = RunBackend();
            AssertShmemInvalid(exit, output, $"could not attach to shared memory (key {_pm.Main.Mapping.Key}, ID {_pm.Main.Mapping.Id}) " +
                                             $"of data directory \"{_pm.DataDir}\": {problem}");
        }
        finally
        {
            magic = saved;
        }
    }

    [Fact]
    public void A_backend_whose_segment_is_gone_exits_3()
    {
        var (exit, output) = RunBackend(p => p with { SegmentKey = p.SegmentKey + 1_000_000 });
        AssertShmemInvalid(exit, output, $"main shared memory segment (key {_pm.Main.Mapping.Key + 1_000_000}, ID {_pm.Main.Mapping.Id}) no longer exists");
    }

    [Fact]
    public void A_backend_whose_slot_holds_another_generation_exits_3()
    {
        var (exit, output) = RunBackend(p => p with { Generation = Generation + 1 });
        AssertShmemInvalid(exit, output, $"backend slot {Slot} is not assigned to this process: backend slot array: slot {Slot} holds state 1 generation {Generation}");
    }

    [Fact]
    public void A_backend_whose_lock_owner_record_is_garbage_exits_3()
    {
        const long Slot0Entry0TagHigh = 64 + 64 + 8 + 4; // tranche (2 bytes), mode, phase
        Find("LWLock owner records").Ref<int>(Slot0Entry0TagHigh) = 0x0901_0000;
        var (exit, output) = RunBackend();
        AssertShmemInvalid(exit, output, $"could not take lock owner slot {Slot}: lock owner slot {Slot} is corrupt: The record's entry 0 has phase 9 (expected 1 or 2).");
    }

    [Fact]
    public void A_worker_that_finds_the_dsm_control_segment_corrupt_on_first_use_exits_3()
    {
        using var raw = Shmem.Segments.MappedSegment.AttachPosix($"/pm.{_pm.Config.Tag}.ctl.{_pm.Control.Handle}")!;
        ref uint magic = ref raw.Region.Ref<uint>(DsmSegmentHeader.Size); // the table's magic, after the object header
        uint saved = magic;
        magic = Garbage;
        try
        {
            var (exit, output) = RunBackend(p => p with { Entry = "dsm-hold", Argument = "1:64kB" });
            AssertShmemInvalid(exit, output, "background worker \"w\": dynamic shared memory control segment is not valid: " +
                                             "Magic number 0xDEADBEEF does not match 0x43544D50.");
        }
        finally
        {
            magic = saved;
        }
    }

    [Fact]
    public void A_backend_attaching_intact_memory_runs_until_stopped()
    {
        var (exit, output) = RunBackend(stopWhenActive: true);
        Assert.True(exit.ExitCode == 1, $"{exit.Describe("backend")}\n{output}");
        Assert.Contains("FATAL:  terminating background worker \"w\" due to administrator command", output);
        Assert.DoesNotContain("shared memory is invalid", output);
    }

    private static void AssertShmemInvalid(ChildExit exit, string output, string expected)
    {
        Assert.True(exit.ExitCode == BackendExitCodes.ShmemInvalid, $"{exit.Describe("backend")}\n{output}");
        var fatal = output.Split('\n').Where(l => l.Contains(" FATAL:  ", StringComparison.Ordinal)).ToList();
        Assert.True(fatal.Count == 1, output);
        Assert.Contains("FATAL:  shared memory is invalid: ", fatal[0]);
        Assert.Contains(expected, fatal[0]);
    }

    private ShmemRegion Find(string name)
    {
        Assert.True(_pm.Main.Index.TryFind(name, out var region), name);
        return region;
    }

    /// <summary>Assigns the slot, starts pm-backend with its parameter block on descriptor 3 and its stdout and stderr
    /// on a pipe, and waits (within the global timeout) for it to exit; with <paramref name="stopWhenActive"/>, sends
    /// SIGTERM once it has marked its slot Active. Returns how it ended and everything it wrote.</summary>
    private (ChildExit Exit, string Output) RunBackend(Func<BackendParameters, BackendParameters>? change = null, bool stopWhenActive = false)
    {
        _pm.Instance.Slots.Assign(Slot, Generation, "w", "idle", "", pooled: false);
        var p = new BackendParameters
        {
            DataDir = _pm.DataDir,
            DataDirDevice = _pm.DataDirStat.Device,
            DataDirInode = _pm.DataDirStat.Inode,
            SegmentKind = "posix",
            SegmentKey = _pm.Main.Mapping.Key,
            SegmentId = _pm.Main.Mapping.Id,
            SegmentSize = _pm.Main.Mapping.Size,
            DsmControlHandle = _pm.Control.Handle.Value,
            DsmType = "posix",
            Slot = Slot,
            Generation = Generation,
            PostmasterPid = Environment.ProcessId,
            WorkerName = "w",
            Entry = "idle",
            Argument = "",
            Pooled = false,
            LogDestination = "stderr",
            LogLevel = "log",
        };
        p = change?.Invoke(p) ?? p;
        var (paramRead, paramWrite) = ProcessSpawner.CreatePipe();
        var (outRead, outWrite) = ProcessSpawner.CreatePipe();
        int pid;
        using (paramRead)
        using (outWrite)
        {
            using (paramWrite)
                Assert.True(ProcessSpawner.TryWrite(paramWrite.Fd, p.Serialize()));
            pid = ProcessSpawner.Spawn(new SpawnOptions(Paths.BackendExe, Array.Empty<string>(),
                new Dictionary<string, string> { ["DOTNET_EnableDiagnostics"] = "0" }, StdinPath: "/dev/null",
                StdoutFd: outWrite.Fd, InheritFds: new[] { (paramRead.Fd, BackendParameters.ParameterFd) }));
        }
        using (outRead)
        {
            ChildExit? exit = null;
            try
            {
                if (stopWhenActive)
                {
                    Wait.Until(() => _pm.Instance.Slots.StateOf(Slot) == BackendSlotState.Active || (exit = ProcessSpawner.TryReap(pid)) is not null,
                        "the backend to mark its slot active");
                    if (exit is null)
                        ProcessControl.Signal(pid, Signals.SIGTERM);
                }
                Wait.Until(() => (exit ??= ProcessSpawner.TryReap(pid)) is not null, "the backend to exit");
            }
            finally
            {
                if (exit is null)
                {
                    ProcessControl.Signal(pid, Signals.SIGKILL);
                    Wait.Until(() => ProcessSpawner.TryReap(pid) is not null, "the killed backend to be reaped");
                }
                _pm.Instance.Slots.Free(Slot);
            }
            return (exit!.Value, ProcessSpawner.ReadToEnd(outRead.Fd));
        }
    }
}
