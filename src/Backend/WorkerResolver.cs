using System.Reflection;
using System.Runtime.Loader;
using Postmaster.Backend.Workers;
using Postmaster.Workers;

namespace Postmaster.Backend;

/// <summary>
/// Turns a worker entry into an instance: a built-in name (idle, exit, demo, lock-hold, dsm-hold, dsm-attach), or
/// "ASSEMBLY.dll:Namespace.Type" (PostgreSQL's bgw_library_name + bgw_function_name); a relative assembly path is
/// relative to the data directory. Every failure is a <see cref="WorkerLoadException"/> saying what and where.
/// </summary>
public static class WorkerResolver
{
    public static readonly IReadOnlyDictionary<string, Func<IBackgroundWorker>> Builtins =
        new Dictionary<string, Func<IBackgroundWorker>>(StringComparer.Ordinal)
        {
            ["idle"] = () => new IdleWorker(),
            ["exit"] = () => new ExitWorker(),
            ["demo"] = () => new DemoWorker(),
            ["lock-hold"] = () => new LockHoldWorker(),
            ["spawn"] = () => new SpawnWorker(),
            ["dsm-hold"] = () => new DsmHoldWorker(),
            ["dsm-attach"] = () => new DsmAttachWorker(),
            ["dsm-churn"] = () => new DsmChurnWorker(),
            ["registry-set"] = () => new RegistrySetWorker(),
            ["registry-get"] = () => new RegistryGetWorker(),
        };

    /// <summary>
    /// Pays the first-call costs of <see cref="Resolve"/> (reflection's type lookup and activation, about 13 ms in a
    /// fresh process) ahead of time: a parked pool member calls it while it waits, so a request does not.
    /// </summary>
    public static void Warm()
    {
        var asm = typeof(IdleWorker).Assembly;
        var type = asm.GetType(typeof(IdleWorker).FullName!, throwOnError: true)!;
        _ = type.GetConstructor(Type.EmptyTypes);
        _ = Activator.CreateInstance(type);
        _ = Path.GetFullPath("warm", "/");
    }

    public static IBackgroundWorker Resolve(string entry, string dataDir)
    {
        if (Builtins.TryGetValue(entry, out var make))
            return make();
        int colon = entry.LastIndexOf(':');
        if (colon <= 0 || colon == entry.Length - 1)
            throw new WorkerLoadException($"invalid worker entry \"{entry}\"",
                $"Use a built-in worker ({string.Join(", ", Builtins.Keys)}) or \"path/to/Assembly.dll:Namespace.Type\".");
        string path = Path.GetFullPath(entry[..colon], dataDir);
        string typeName = entry[(colon + 1)..];
        if (!File.Exists(path))
            throw new WorkerLoadException($"could not access worker library \"{path}\": No such file or directory");
        Assembly asm;
        try
        {
            asm = AssemblyLoadContext.Default.LoadFromAssemblyPath(path);
        }
        catch (Exception e) when (e is BadImageFormatException or FileLoadException or IOException)
        {
            throw new WorkerLoadException($"could not load worker library \"{path}\": {e.Message}");
        }
        var type = asm.GetType(typeName, throwOnError: false)
                   ?? throw new WorkerLoadException($"could not find type \"{typeName}\" in worker library \"{path}\"");
        if (!typeof(IBackgroundWorker).IsAssignableFrom(type))
            throw new WorkerLoadException($"type \"{typeName}\" in \"{path}\" does not implement {typeof(IBackgroundWorker).FullName}");
        if (type.IsAbstract || type.GetConstructor(Type.EmptyTypes) is null)
            throw new WorkerLoadException($"type \"{typeName}\" in \"{path}\" needs a public parameterless constructor");
        return (IBackgroundWorker)Activator.CreateInstance(type)!;
    }
}

public sealed class WorkerLoadException(string message, string? hint = null) : Exception(message)
{
    public string? Hint { get; } = hint;
}
