using System.CommandLine;
using System.Text.Json;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Layout;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Registry;

namespace Postmaster.Cli;

/// <summary>
/// <c>postmaster shmem</c>: one view of everything in the running instance's shared memory, read from the segments
/// themselves without taking any lock: main-segment allocations (like pg_shmem_allocations: name, offset, size,
/// allocated size, plus the anonymous and free rows), DSM slots, lock tranches with holders and waiters, and
/// backend slots. JSON keys are documented in docs/architecture.md.
/// </summary>
public static class ShmemCommand
{
    public static Command Create()
    {
        var cmd = new Command("shmem", "Show the running server's shared memory: allocations, DSM segments, locks, backends")
        {
            CliOptions.DataDir, CliOptions.Json,
        };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            if (InstanceAccess.AttachRunning(dir) is not var (server, shmem))
                return ExitCodes.NotRunning;
            using (server)
            using (shmem)
            {
                using var dsm = InstanceAccess.AttachDsm(shmem, server.Contents, dir);
                var view = Snapshot.Take(shmem, dsm);
                if (pr.GetValue(CliOptions.Json))
                    JsonOut.Print(view.WriteJson);
                else
                    view.WriteText();
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private sealed record Snapshot(uint DsmControlHandle, long TotalSize, IReadOnlyList<ShmemAllocation> Allocations, IReadOnlyList<DsmSegmentInfo> Dsm,
        IReadOnlyList<KeyValuePair<int, string>> Tranches, IReadOnlyList<LWLockHolding> Holdings, IReadOnlyList<BackendSlotInfo> Slots,
        IReadOnlyList<DsmRegistryEntryInfo> Registry)
    {
        public static Snapshot Take(InstanceShmem shmem, DsmControl? dsm)
        {
            var inspector = new LWLockInspector(shmem.Owners, shmem.Tranches);
            var slots = Enumerable.Range(0, shmem.Slots.Count).Select(shmem.Slots.Read).Where(s => s.State != BackendSlotState.Unused).ToList();
            var holdings = Enumerable.Range(0, shmem.Slots.Count).SelectMany(inspector.HeldBy).ToList();
            return new Snapshot(shmem.Main.Header.DsmControlHandle, shmem.Main.Header.TotalSize, shmem.Main.Index.List(), dsm?.Inspect() ?? Array.Empty<DsmSegmentInfo>(),
                shmem.Tranches.Names(), holdings, slots, shmem.DsmRegistryTable.List());
        }

        public void WriteText()
        {
            Console.WriteLine($"main segment: {TotalSize} bytes");
            Console.WriteLine($"  {"name",-40} {"offset",12} {"size",14} {"allocated_size",14}");
            foreach (var r in Allocations)
                Console.WriteLine($"  {r.Name ?? "<free>",-40} {r.Offset?.ToString() ?? "",12} {r.Size,14} {r.AllocatedSize,14}");
            Console.WriteLine($"dynamic shared memory segments: {Dsm.Count} (control segment {DsmControlHandle})");
            foreach (var d in Dsm)
                Console.WriteLine($"  handle {d.Handle,-12} {d.Size,12} bytes {d.Implementation,-11} refcount {d.ReferenceCount,-3} " +
                                  $"{(d.Pinned ? "pinned" : "      ")} {d.State,-10} attached: {string.Join(", ", AttachedPids(d))}");
            Console.WriteLine($"DSM registry entries: {Registry.Count}");
            foreach (var e in Registry)
                Console.WriteLine($"  {e.Name,-40} {TypeName(e.Type),-7} handle {e.Handle,-12} {ShownSize(e),12} bytes {e.State}" +
                                  (e.OwnerPid > 0 ? $" (initialising by PID {e.OwnerPid})" : ""));
            Console.WriteLine($"lock tranches: {Tranches.Count}");
            foreach (var (id, name) in Tranches)
            {
                var held = Holdings.Where(h => h.TrancheId == id).ToList();
                Console.WriteLine($"  {id,5} {name,-40}" + (held.Count == 0 ? "" :
                    " " + string.Join("; ", held.Select(h => $"{(h.Phase == HeldLockPhase.Held ? "held" : "waited for")} by PID {StatusCommand.PidText(h.Pid)} ({h.Mode})"))));
            }
            Console.WriteLine($"backend slots in use: {Slots.Count}");
            foreach (var s in Slots)
                Console.WriteLine($"  slot {s.Slot,4} PID {StatusCommand.PidText(s.Pid),8} {s.State,-9} {s.Name} ({s.Entry}){StatusCommand.SessionText(s)}");
        }

        public void WriteJson(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteNumber("totalSize", TotalSize);
            w.WriteNumber("dsmControlHandle", DsmControlHandle);
            w.WriteStartArray("allocations");
            foreach (var r in Allocations)
            {
                w.WriteStartObject();
                if (r.Name is null) w.WriteNull("name"); else w.WriteString("name", r.Name);
                if (r.Offset is long o) w.WriteNumber("offset", o); else w.WriteNull("offset");
                w.WriteNumber("size", r.Size);
                w.WriteNumber("allocatedSize", r.AllocatedSize);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("dsmSegments");
            foreach (var d in Dsm)
            {
                w.WriteStartObject();
                w.WriteNumber("handle", d.Handle.Value);
                w.WriteNumber("size", d.Size);
                w.WriteString("implementation", d.Implementation.ToString().ToLowerInvariant());
                w.WriteNumber("referenceCount", d.ReferenceCount);
                w.WriteBoolean("pinned", d.Pinned);
                w.WriteString("state", d.State.ToString().ToLowerInvariant());
                w.WriteStartArray("attachedPids");
                foreach (var pid in AttachedPids(d))
                    w.WriteNumberValue(pid);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("registry");
            foreach (var e in Registry)
            {
                w.WriteStartObject();
                w.WriteString("name", e.Name);
                w.WriteNumber("handle", e.Handle.Value);
                w.WriteString("type", TypeName(e.Type));
                w.WriteNumber("size", ShownSize(e));
                w.WriteNumber("segmentSize", e.Size);
                w.WriteString("state", e.State.ToString().ToLowerInvariant());
                if (e.OwnerPid > 0) w.WriteNumber("initialiserPid", e.OwnerPid); else w.WriteNull("initialiserPid");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("lockTranches");
            foreach (var (id, name) in Tranches)
            {
                w.WriteStartObject();
                w.WriteNumber("id", id);
                w.WriteString("name", name);
                foreach (var (key, phase) in new[] { ("holders", HeldLockPhase.Held), ("waiters", HeldLockPhase.Acquiring) })
                {
                    w.WriteStartArray(key);
                    foreach (var h in Holdings.Where(h => h.TrancheId == id && h.Phase == phase))
                    {
                        w.WriteStartObject();
                        StatusCommand.WritePid(w, "pid", h.Pid);
                        w.WriteNumber("slot", h.Slot);
                        w.WriteString("mode", h.Mode.ToString().ToLowerInvariant());
                        w.WriteBoolean("alive", h.IsAlive);
                        w.WriteString("lock", h.Lock.ToString());
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("backendSlots");
            foreach (var s in Slots)
            {
                w.WriteStartObject();
                w.WriteNumber("slot", s.Slot);
                StatusCommand.WritePid(w, "pid", s.Pid);
                w.WriteString("state", s.State.ToString().ToLowerInvariant());
                w.WriteString("name", s.Name);
                w.WriteString("entry", s.Entry);
                w.WriteNumber("generation", s.Generation);
                w.WriteBoolean("pooled", s.Pooled);
                StatusCommand.WriteSession(w, s);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }

        /// <summary>PostgreSQL 19's pg_dsm_registry_allocations.type.</summary>
        private static string TypeName(DsmRegistryEntryType type) => type switch
        {
            DsmRegistryEntryType.Area => "area",
            DsmRegistryEntryType.HashTable => "hash",
            _ => "segment",
        };

        /// <summary>What the name holds in all once Ready (an area's every segment), else the segment's size.</summary>
        private static long ShownSize(DsmRegistryEntryInfo e) => e.State == DsmRegistryEntryState.Ready ? e.TotalSize : e.Size;

        private static IEnumerable<int> AttachedPids(DsmSegmentInfo d) => d.AttachedBy.Where(a => a.Attached && a.Pid > 0).Select(a => a.Pid);
    }
}
