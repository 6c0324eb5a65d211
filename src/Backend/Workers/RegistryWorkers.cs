using Postmaster.Workers;

namespace Postmaster.Backend.Workers;

/// <summary>
/// "registry-set": argument "NAME=VALUE" — PostgreSQL's test_dsm_registry set_val_in_shmem: gets the named 8-byte
/// segment from the DSM registry (initialising it to 0 on first use in the instance), stores VALUE, logs
/// "registry NAME set to VALUE (found=...)" and exits 0 (done).
/// </summary>
internal sealed class RegistrySetWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        var parts = context.Argument.Split('=', 2);
        if (parts.Length != 2 || !long.TryParse(parts[1], out long value))
            throw new ArgumentException($"invalid argument \"{context.Argument}\" for worker \"registry-set\": expected NAME=VALUE");
        var seg = context.Registry.GetNamedSegment(parts[0], sizeof(long), r => r.Ref<long>(0) = 0, out bool found);
        Volatile.Write(ref seg.Region.Ref<long>(0), value);
        context.Log($"registry {parts[0]} set to {value} (found={found.ToString().ToLowerInvariant()})");
        return 0;
    }
}

/// <summary>"registry-get": argument "NAME" — get_val_in_shmem: logs "registry NAME is VALUE (found=...)" and exits 0.</summary>
internal sealed class RegistryGetWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        var seg = context.Registry.GetNamedSegment(context.Argument, sizeof(long), r => r.Ref<long>(0) = 0, out bool found);
        context.Log($"registry {context.Argument} is {Volatile.Read(ref seg.Region.Ref<long>(0))} (found={found.ToString().ToLowerInvariant()})");
        return 0;
    }
}
