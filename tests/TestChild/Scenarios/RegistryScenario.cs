using Postmaster.Shmem;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Registry;
using Postmaster.Shmem.Segments;

namespace Postmaster.TestChild.Scenarios;

/// <summary>
/// registry: a backend-like process using the DSM registry. Attaches the test's instance (datadir=DIR key=K id=I,
/// a POSIX main segment), takes lock owner slot=N, opens a <see cref="DsmSession"/> of type=posix|sysv|mmap and a
/// <see cref="DsmRegistry"/> on it, prints "ready", then runs commands from stdin, one per line:
/// <code>
/// get NAME SIZE [INIT]  → got NAME found=True|False handle=H size=S
///     INIT: none (default) | value V (offset 0 = V, offset 8 = this pid) | slow V MS (the same after sleeping MS ms,
///     so that other callers arrive while it runs) | throw | block V (prints "initialising NAME", then reads stdin
///     until "continue", then as value V) | block-throw (the same, then throws) | hang-pinned V (as value V, then
///     prints "pinned NAME HANDLE" after the pin, before the publish, and blocks: the test kills it)
///     Whenever this process's initialiser runs it first prints "init NAME PID" (the test counts them).
/// write NAME V          → wrote NAME           (offset 0 of a segment got earlier)
/// read NAME             → value NAME V PID     (offsets 0 and 8)
/// release NAME          → released NAME True|False
/// exit                  → bye (normal exit path: DetachAll, release the slot)
/// </code>
/// A command that fails answers "error MESSAGE" and the loop goes on.
/// </summary>
internal static class RegistryScenario
{
    public static int Run(ScenarioArgs args)
    {
        using var child = DsmChildContext.Open(args);
        var (instance, owner, dsm) = (child.Instance, child.Owner, child.Dsm);
        var registry = new DsmRegistry(instance, owner, dsm);
        var segments = new Dictionary<string, NamedSegment>(StringComparer.Ordinal);
        Console.WriteLine($"ready slot={owner.Slot}");
        while (Console.ReadLine() is { } line)
        {
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0)
                continue;
            if (words[0] == "exit")
            {
                dsm.DetachAll();
                Console.WriteLine("bye");
                return 0;
            }
            try
            {
                Console.WriteLine(Execute(registry, segments, words));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Console.WriteLine($"error {e.Message}");
            }
        }
        return 1; // stdin closed without "exit"
    }

    private static string Execute(DsmRegistry registry, Dictionary<string, NamedSegment> segments, string[] w)
    {
        switch (w[0])
        {
            case "get":
            {
                string name = w[1];
                var init = Initialiser(registry, name, w[2..]);
                var seg = registry.GetNamedSegment(name, long.Parse(w[2]), init, out bool found);
                segments[name] = seg;
                return $"got {name} found={found} handle={seg.Handle} size={seg.Size}";
            }
            case "write":
                segments[w[1]].Region.Ref<long>(0) = long.Parse(w[2]);
                return $"wrote {w[1]}";
            case "read":
            {
                var region = segments[w[1]].Region;
                return $"value {w[1]} {region.Ref<long>(0)} {region.Ref<long>(8)}";
            }
            case "release":
                segments.Remove(w[1]);
                return $"released {w[1]} {registry.Release(w[1])}";
            default:
                throw new ArgumentException($"unknown command \"{w[0]}\"");
        }
    }

    /// <summary>The initialiser "get NAME SIZE INIT..." asks for (<paramref name="w"/> starts at SIZE).</summary>
    private static Action<ShmemRegion>? Initialiser(DsmRegistry registry, string name, string[] w)
    {
        string mode = w.Length > 1 ? w[1] : "none";
        void Announce() => Console.WriteLine($"init {name} {ProcessControl.CurrentPid}");
        void Store(ShmemRegion r, string value)
        {
            r.Ref<long>(0) = long.Parse(value);
            r.Ref<long>(8) = ProcessControl.CurrentPid;
        }
        switch (mode)
        {
            case "none":
                return _ => Announce();
            case "value":
                return r =>
                {
                    Announce();
                    Store(r, w[2]);
                };
            case "slow":
                return r =>
                {
                    Announce();
                    Thread.Sleep(int.Parse(w[3])); // a long initialiser, not synchronisation: others arrive meanwhile
                    Store(r, w[2]);
                };
            case "throw":
                return _ =>
                {
                    Announce();
                    throw new InvalidOperationException("initialiser failed on purpose");
                };
            case "block":
                return r =>
                {
                    Announce();
                    Console.WriteLine($"initialising {name}");
                    while (Console.ReadLine() is { } line && line != "continue")
                    {
                    }
                    Store(r, w[2]);
                };
            case "block-throw":
                return _ =>
                {
                    Announce();
                    Console.WriteLine($"initialising {name}");
                    while (Console.ReadLine() is { } line && line != "continue")
                    {
                    }
                    throw new InvalidOperationException("initialiser failed on purpose");
                };
            case "hang-pinned":
                registry.BeforePublish = h =>
                {
                    Console.WriteLine($"pinned {name} {h}");
                    Thread.Sleep(Timeout.Infinite); // the test kills this process here
                };
                return r =>
                {
                    Announce();
                    Store(r, w[2]);
                };
            default:
                throw new ArgumentException($"unknown initialiser \"{mode}\"");
        }
    }
}
