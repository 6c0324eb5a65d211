using Postmaster.Cli;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;
using Postmaster.Supervision;
using Postmaster.Workers;
using Xunit;

namespace Postmaster.Tests.Units;

public sealed class SupervisionUnitTests
{
    [Theory]
    [InlineData(1, 100)]
    [InlineData(2, 200)]
    [InlineData(3, 400)]
    [InlineData(4, 800)]
    [InlineData(5, 1000)]
    [InlineData(60, 1000)]
    public void Restart_delay_doubles_per_consecutive_failure_up_to_the_cap(int failures, int expectedMs) =>
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs),
            RestartBackoff.Delay(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1), failures));

    [Fact]
    public void A_stable_run_resets_the_failure_count()
    {
        Assert.Equal(1, RestartBackoff.NextFailureCount(7, TimeSpan.FromSeconds(31), TimeSpan.FromSeconds(30)));
        Assert.Equal(8, RestartBackoff.NextFailureCount(7, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30)));
    }

    [Theory]
    [InlineData(0x0000, 0, null, "exited with exit code 0")]
    [InlineData(0x8900, 137, null, "exited with exit code 137")]
    [InlineData(0x0009, null, 9, "was terminated by signal 9: Killed")]
    [InlineData(0x008B, null, 11, "was terminated by signal 11: Segmentation fault (core dumped)")]
    public void Wait_status_tells_exit_codes_from_signals(int status, int? code, int? signal, string text)
    {
        var exit = ChildExit.FromWaitStatus(42, status);
        Assert.Equal(code, exit.ExitCode);
        Assert.Equal(signal, exit.Signal);
        Assert.Equal($"background worker \"w\" (PID 42) {text}", exit.Describe("background worker \"w\""));
    }

    [Fact]
    public void Backend_parameters_round_trip_and_reject_other_versions()
    {
        var p = new BackendParameters
        {
            DataDir = "/data dir/with spaces=and%", DataDirDevice = 2049, DataDirInode = 123456789, SegmentKind = "sysv",
            SegmentKey = 42, SegmentId = 7, SegmentSize = 1 << 20, DsmControlHandle = 12345, DsmType = "posix", Slot = 3,
            Generation = 99, PostmasterPid = 1000, WorkerName = "w.1", Entry = "a.dll:B.C", Argument = "x\ny=z", Pooled = true,
            LogDestination = "collector", LogLevel = "debug1", Preload = ["idle", "/a b/c%.dll:N.T"],
        };
        var back = BackendParameters.Parse(p.Serialize());
        Assert.Equal(p.Preload, back.Preload);
        Assert.Equal(p, back with { Preload = p.Preload });
        Assert.Empty(BackendParameters.Parse((p with { Preload = [] }).Serialize()).Preload);
        Assert.Contains("version 1", Assert.Throws<FormatException>(() =>
            BackendParameters.Parse(p.Serialize().Replace("version=2", "version=1"))).Message);
        Assert.Contains("truncated", Assert.Throws<FormatException>(() =>
            BackendParameters.Parse(p.Serialize().Replace("end=1\n", ""))).Message);
        Assert.Contains("unknown backend parameter \"extra\"", Assert.Throws<FormatException>(() =>
            BackendParameters.Parse("extra=1\n" + p.Serialize())).Message);
        Assert.Contains("backend parameter \"slot\" is repeated", Assert.Throws<FormatException>(() =>
            BackendParameters.Parse("slot=4\n" + p.Serialize())).Message);
        Assert.Contains("backend parameter \"segment_id\" is missing", Assert.Throws<FormatException>(() =>
            BackendParameters.Parse(p.Serialize().Replace("segment_id=7\n", ""))).Message);
        Assert.Contains("malformed backend parameter line \"no equals\"", Assert.Throws<FormatException>(() =>
            BackendParameters.Parse("no equals\n" + p.Serialize())).Message);
        foreach (var bad in new[] { "slot=-1", "slot=x", "slot=", "slot=2147483648", "generation=99999999999999999999" })
        {
            string field = bad[..bad.IndexOf('=')];
            string text = string.Join('\n', p.Serialize().Split('\n').Select(l => l.StartsWith(field + "=") ? bad : l));
            Assert.Contains($"backend parameter \"{field}\" is not a number", Assert.Throws<FormatException>(() =>
                BackendParameters.Parse(text)).Message);
        }
    }

    [Fact]
    public void Backend_parameters_keep_extreme_numbers_and_non_ascii_text()
    {
        var p = new BackendParameters
        {
            DataDir = "/données/数据 dir", DataDirDevice = ulong.MaxValue, DataDirInode = 0, SegmentKind = "posix",
            SegmentKey = -123456789012, SegmentId = long.MinValue + 1, SegmentSize = long.MaxValue, DsmControlHandle = uint.MaxValue,
            DsmType = "mmap", Slot = int.MaxValue, Generation = 0, PostmasterPid = 1, WorkerName = "wörker", Entry = "idle",
            Argument = "%0A literally, then a real\r\nline break", Pooled = false, LogDestination = "stderr",
            LogLevel = "info",
        };
        var back = BackendParameters.Parse(p.Serialize());
        Assert.Empty(back.Preload);
        Assert.Equal(p, back with { Preload = p.Preload });
    }

    [Fact]
    public void Options_file_quotes_round_trip()
    {
        var args = new[] { "start", "-D", "/a b/\"c\"", "-c", "x=y\\z", "" };
        Assert.Equal(args, OptionsFile.Parse(OptionsFile.Format(args)));
    }

    [Fact]
    public void Lock_file_parsing_tolerates_partial_files()
    {
        Assert.Null(LockFileContents.Parse(""));
        Assert.Null(LockFileContents.Parse("bogus\n"));
        var partial = LockFileContents.Parse("123\n/data\n");
        Assert.Equal(123, partial!.Pid);
        Assert.Null(partial.ShmKey);
        var full = LockFileContents.Parse("123\n/data\n1700000000\n0\n\n\n    424242                    7\nready   \nsysv               8400896 posix\n");
        Assert.Equal((424242L, 7L, "ready", "sysv", 8400896L, "posix"),
            (full!.ShmKey!.Value, full.ShmId!.Value, full.TrimmedStatus, full.ShmType, full.ShmSize!.Value, full.DsmType));
    }

    [Fact]
    public void Exit_callbacks_run_in_postgres_order_each_once_and_survive_failures()
    {
        var order = new List<string>();
        var cb = new ExitCallbacks();
        cb.OnProcExit("p1", () => order.Add("proc 1"));
        cb.BeforeShmemExit("b1", () => order.Add("before 1"));
        cb.OnShmemExit("s1", () => order.Add("shmem 1"));
        cb.BeforeShmemExit("b2", () => throw new InvalidOperationException("boom"));
        cb.OnShmemExit("s2", () => order.Add("shmem 2"));
        var errors = new List<string>();
        cb.RunAll(() => order.Add("dsm"), (name, e) => errors.Add($"{name}: {e.Message}"));
        cb.RunAll(() => order.Add("dsm again"), (_, _) => { });
        Assert.Equal(new[] { "before 1", "dsm", "shmem 2", "shmem 1", "proc 1" }, order);
        Assert.Equal(new[] { "b2: boom" }, errors);
        Assert.Throws<InvalidOperationException>(() => cb.OnProcExit("late", () => { }));
    }

    [Theory]
    [InlineData("KILL", 9)]
    [InlineData("SIGSEGV", 11)]
    [InlineData("15", 15)]
    public void Signal_names_parse(string text, int expected)
    {
        Assert.True(Signals.TryParse(text, out int s));
        Assert.Equal(expected, s);
    }
}

public sealed class LayoutPinTests
{
    [Fact]
    public void Builtin_lock_count_matches_the_enum() =>
        Assert.Equal(Enum.GetValues<Postmaster.Shmem.Locks.BuiltinLWLock>().Length, Postmaster.Shmem.Locks.LWLockTrancheTable.BuiltinCount);
}
