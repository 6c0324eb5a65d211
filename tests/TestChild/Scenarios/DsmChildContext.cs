using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.TestChild.Scenarios;

/// <summary>What a backend-like scenario process opens: the test's instance (datadir=DIR key=K id=I, a POSIX main
/// segment), lock owner slot=N, and a <see cref="DsmSession"/> of type=posix|sysv|mmap. Dispose releases them in
/// reverse order.</summary>
internal sealed class DsmChildContext : IDisposable
{
    private DsmChildContext(InstanceShmem instance, LockOwner owner, DsmSession dsm)
    {
        Instance = instance;
        Owner = owner;
        Dsm = dsm;
    }

    public InstanceShmem Instance { get; }

    public LockOwner Owner { get; }

    public DsmSession Dsm { get; }

    public static DsmChildContext Open(ScenarioArgs args)
    {
        string dataDir = args.String("datadir");
        var stat = FileStat.TryStat(dataDir) ?? throw new ArgumentException($"data directory \"{dataDir}\" does not exist");
        var type = args.String("type") switch
        {
            "posix" => DsmType.Posix,
            "sysv" => DsmType.SysV,
            "mmap" => DsmType.Mmap,
            var t => throw new ArgumentException($"type={t} is not posix, sysv or mmap"),
        };
        var instance = InstanceShmem.Attach(SegmentKind.Posix, args.Long("key"), args.Long("id"), stat);
        try
        {
            var owner = instance.Owners.CreateOwner(args.Int("slot"), instance.Tranches);
            return new DsmChildContext(instance, owner, new DsmSession(instance, owner, DsmConfig.For(type, dataDir, stat)));
        }
        catch
        {
            instance.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Dsm.Dispose();
        Owner.Dispose();
        Instance.Dispose();
    }
}
