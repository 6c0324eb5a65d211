using Postmaster.Configuration;
using Postmaster.Daemon;
using Postmaster.Logging;
using Postmaster.Shmem;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;
using Xunit;

namespace Postmaster.Tests.Integrity;

/// <summary>
/// <see cref="InstanceMemory.Validate"/>, the supervisor's one call: the instance it created is valid; garbage over a
/// module, over the DSM control handle the main header publishes, or over the DSM control segment is named.
/// </summary>
public sealed class InstanceMemoryValidationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pmtest-memvalidate-").FullName;
    private readonly ServerLog _log = new(LogSinks.Stderr, null, Severity.Warning);
    private readonly DataDirLockFile _lockFile;
    private readonly InstanceMemory _memory;

    public InstanceMemoryValidationTests()
    {
        File.WriteAllText(DataDirectory.ConfigPath(_dir), "shared_memory_type = posix\ndynamic_shared_memory_type = posix\nmax_backends = 4\n");
        var settings = ConfigLoader.Load(DataDirectory.ConfigPath(_dir), Array.Empty<string>());
        _lockFile = DataDirLockFile.Create(_dir, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), LockFileListenLines.None, null, NullShmemLogger.Instance);
        _memory = new InstanceMemory(settings, _dir, FileStat.TryStat(_dir)!.Value, _log, _lockFile);
        _memory.Create();
    }

    public void Dispose()
    {
        _memory.Dispose();
        _lockFile.Remove();
        _lockFile.Dispose();
        _log.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void The_supervisor_learns_the_first_problem_of_its_shared_memory()
    {
        Assert.Null(_memory.Validate());

        Assert.True(_memory.Main.Index.TryFind(InstanceLayout.WorkerRequestsName, out var requests));
        ref uint magic = ref requests.Ref<uint>(0);
        uint saved = magic;
        magic = 0;
        Assert.Equal("worker request queue: wrong magic number 0x00000000 (expected 0x504D5251)", _memory.Validate());
        magic = saved;

        ref uint handle = ref _memory.Main.Header.DsmControlHandle;
        uint savedHandle = handle;
        handle = savedHandle + 2;
        Assert.Equal($"main shared memory header: DSM control handle {savedHandle + 2} is not {savedHandle}, the control segment's",
            _memory.Validate());
        handle = savedHandle;

        Assert.Null(_memory.Validate());
    }
}
