using System.CommandLine;
using Postmaster.Shmem;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Layout;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.Cli;

/// <summary>
/// <c>postmaster shmem</c>: the running instance's main-segment allocations, like pg_shmem_allocations (name, offset,
/// size, allocated size, plus the anonymous and free rows), read from the segment itself.
/// </summary>
public static class ShmemCommand
{
    public static Command Create()
    {
        var cmd = new Command("shmem", "List the named allocations in the running server's shared memory")
        {
            CliOptions.DataDir, CliOptions.Json,
        };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            if (dir is null)
                return ExitCodes.Failure;
            var running = ServerControl.FindRunning(dir);
            if (running?.ShmKey is not long key || running.ShmId is not long id)
            {
                Report.Error($"no server running in data directory \"{dir}\"");
                return ExitCodes.NotRunning;
            }
            var kind = running.ShmType == "posix" ? SegmentKind.Posix : SegmentKind.SysV;
            IReadOnlyList<ShmemAllocation> rows;
            long total;
            try
            {
                var dirStat = FileStat.TryStat(dir) ?? throw new ShmemException($"data directory \"{dir}\" vanished");
                using var seg = MainSegment.Attach(kind, key, id, dirStat);
                rows = seg.Index.List();
                total = seg.Header.TotalSize;
            }
            catch (ShmemException e)
            {
                Report.Error(e.Message, e.Detail, e.Hint);
                return ExitCodes.Failure;
            }
            if (pr.GetValue(CliOptions.Json))
                JsonOut.Print(w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("totalSize", total);
                    w.WriteStartArray("allocations");
                    foreach (var r in rows)
                    {
                        w.WriteStartObject();
                        if (r.Name is null) w.WriteNull("name"); else w.WriteString("name", r.Name);
                        if (r.Offset is long o) w.WriteNumber("offset", o); else w.WriteNull("offset");
                        w.WriteNumber("size", r.Size);
                        w.WriteNumber("allocatedSize", r.AllocatedSize);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                });
            else
            {
                Console.WriteLine($"{"name",-40} {"offset",12} {"size",14} {"allocated_size",14}");
                foreach (var r in rows)
                    Console.WriteLine($"{r.Name ?? "<free>",-40} {r.Offset?.ToString() ?? "",12} {r.Size,14} {r.AllocatedSize,14}");
                Console.WriteLine($"({rows.Count} rows; segment {total} bytes)");
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
