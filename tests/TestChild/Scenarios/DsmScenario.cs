using Postmaster.Shmem;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.TestChild.Scenarios;

/// <summary>
/// dsm: a backend-like process using dynamic shared memory. Attaches the test's instance (datadir=DIR key=K id=I,
/// a POSIX main segment), takes lock owner slot=N, opens a <see cref="DsmSession"/> of type=posix|sysv|mmap, prints
/// "ready", then runs commands from stdin, one per line, answering each with one line:
/// <code>
/// create SIZE               → created HANDLE
/// create-stuck SIZE         → creating HANDLE, then blocks in the "creating" window (the test kills it)
/// attach HANDLE             → attached HANDLE SIZE | gone HANDLE
/// fill HANDLE BYTE [OFF LEN] → filled HANDLE
/// check HANDLE BYTE [OFF LEN] → ok HANDLE | mismatch HANDLE OFFSET
/// pin HANDLE / unpin HANDLE → pinned HANDLE / unpinned HANDLE
/// detach HANDLE             → detached HANDLE
/// detach-stuck HANDLE       → destroying HANDLE, then blocks in the moribund window (the test kills it)
/// hold-lock                 → holding-lock (takes the DsmControl lock and keeps it)
/// exit                      → bye (normal exit path: DetachAll, release the slot)
/// </code>
/// A command that fails answers "error MESSAGE" and the loop goes on.
/// </summary>
internal static class DsmScenario
{
    public static int Run(ScenarioArgs args)
    {
        using var child = DsmChildContext.Open(args);
        var (instance, owner, dsm) = (child.Instance, child.Owner, child.Dsm);
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
                Console.WriteLine(Execute(dsm, instance, owner, words));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Console.WriteLine($"error {e.Message}");
            }
        }
        return 1; // stdin closed without "exit"
    }

    private static string Execute(DsmSession dsm, InstanceShmem instance, LockOwner owner, string[] w)
    {
        switch (w[0])
        {
            case "create":
                return $"created {dsm.Create(long.Parse(w[1]))!.Handle}";
            case "create-stuck":
                dsm.AfterOsObjectCreated = h =>
                {
                    Console.WriteLine($"creating {h}");
                    Thread.Sleep(Timeout.Infinite);
                };
                dsm.Create(long.Parse(w[1]));
                return "unreachable";
            case "attach":
                var attached = dsm.Attach(DsmHandle.Parse(w[1]));
                if (attached is null)
                    return $"gone {w[1]}";
                dsm.PinMapping(attached);
                return $"attached {attached.Handle} {attached.Size}";
            case "fill":
            {
                var seg = Find(dsm, w[1]);
                var (offset, length) = Range(seg, w);
                seg.Region.Span(offset, length).Fill(byte.Parse(w[2]));
                return $"filled {seg.Handle}";
            }
            case "check":
            {
                var seg = Find(dsm, w[1]);
                var (offset, length) = Range(seg, w);
                var span = seg.Region.Span(offset, length);
                int bad = span.IndexOfAnyExcept(byte.Parse(w[2]));
                return bad < 0 ? $"ok {seg.Handle}" : $"mismatch {seg.Handle} {offset + bad}";
            }
            case "pin":
                dsm.Pin(Find(dsm, w[1]));
                return $"pinned {w[1]}";
            case "unpin":
                dsm.Unpin(DsmHandle.Parse(w[1]));
                return $"unpinned {w[1]}";
            case "detach":
                dsm.Detach(Find(dsm, w[1]));
                return $"detached {w[1]}";
            case "detach-stuck":
                dsm.BeforeOsObjectRemoved = h =>
                {
                    Console.WriteLine($"destroying {h}");
                    Thread.Sleep(Timeout.Infinite);
                };
                dsm.Detach(Find(dsm, w[1]));
                return "unreachable";
            case "hold-lock":
                owner.Acquire(instance.Tranches.Builtin(BuiltinLWLock.DsmControl), LWLockMode.Exclusive);
                return "holding-lock";
            default:
                throw new ArgumentException($"unknown command \"{w[0]}\"");
        }
    }

    private static DsmSegment Find(DsmSession dsm, string handle) =>
        dsm.FindMapping(DsmHandle.Parse(handle)) ?? throw new ArgumentException($"segment {handle} is not attached here");

    private static (int Offset, int Length) Range(DsmSegment seg, string[] w) =>
        w.Length >= 5 ? (int.Parse(w[3]), int.Parse(w[4])) : (0, checked((int)seg.Size));
}
