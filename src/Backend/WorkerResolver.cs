using System.Reflection;
using System.Runtime.CompilerServices;
using Postmaster.Backend.Workers;
using Postmaster.Shmem.Os;
using Postmaster.Workers;

namespace Postmaster.Backend;

/// <summary>
/// Turns a worker entry into an instance: a built-in name (idle, exit, demo, lock-hold, dsm-hold, dsm-attach), or
/// "ASSEMBLY.dll:Namespace.Type" (PostgreSQL's bgw_library_name + bgw_function_name); a relative assembly path is
/// relative to the data directory. The instance is an <see cref="IBackgroundWorker"/> or an
/// <see cref="IAsyncBackgroundWorker"/> (a type implements exactly one). Every failure is a
/// <see cref="WorkerLoadException"/> saying what and where.
/// </summary>
internal static class WorkerResolver
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
            ["metrics"] = () => new MetricsWorker(),
        };

    /// <summary>User worker types resolved ahead of demand by <see cref="Preload"/>, by entry.</summary>
    private static readonly Dictionary<string, Type> Preloaded = new(StringComparer.Ordinal);

    /// <summary>
    /// A parked pool member's preparation, so that a request pays as little first-use cost as possible: warms
    /// reflection's activation (about 1.5 ms in a fresh process), then resolves each entry (a user
    /// worker's assembly is loaded and its type found) and JIT-compiles its <c>Run</c> (or <c>RunAsync</c> and its state
    /// machine). Nothing user-written runs:
    /// user types are not instantiated. An entry that fails is reported through <paramref name="skipped"/> and left
    /// out; starting a worker with it later reports the error properly.
    /// </summary>
    public static void Preload(IEnumerable<string> entries, string dataDir, Action<string, string> skipped)
    {
        _ = Activator.CreateInstance(typeof(IdleWorker));
        _ = Path.GetFullPath("warm", "/");
        _ = Resolve("idle", dataDir); // Resolve's own first-call costs (ReadyToRun fix-ups)
        foreach (string entry in entries)
        {
            try
            {
                if (Builtins.TryGetValue(entry, out var make))
                {
                    PrepareRun(make().GetType()); // a built-in's constructor does nothing but initialise fields
                    continue;
                }
                var type = ResolveType(entry, dataDir);
                PrepareRun(type);
                Preloaded[entry] = type;
            }
            // A warm-up must never take the pool member down: whatever goes wrong here is reported and skipped.
            catch (Exception e)
            {
                skipped(entry, e.Message);
            }
        }
    }

    private static void PrepareRun(Type type)
    {
        bool sync = typeof(IBackgroundWorker).IsAssignableFrom(type);
        foreach (var method in type.GetInterfaceMap(sync ? typeof(IBackgroundWorker) : typeof(IAsyncBackgroundWorker)).TargetMethods)
        {
            RuntimeHelpers.PrepareMethod(method.MethodHandle);
            // An async method's body is its state machine's MoveNext (a non-generic type unless the worker is generic).
            if (!sync && method.GetCustomAttribute(typeof(AsyncStateMachineAttribute)) is AsyncStateMachineAttribute
                    { StateMachineType: { IsGenericTypeDefinition: false } machine } &&
                machine.GetMethod("MoveNext", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic) is { } moveNext)
                RuntimeHelpers.PrepareMethod(moveNext.MethodHandle);
        }
    }

    /// <summary>The worker <paramref name="entry"/> names, made: an <see cref="IBackgroundWorker"/> or an
    /// <see cref="IAsyncBackgroundWorker"/>.</summary>
    public static object Resolve(string entry, string dataDir)
    {
        if (Builtins.TryGetValue(entry, out var make))
            return make();
        if (!Preloaded.TryGetValue(entry, out var type))
            type = ResolveType(entry, dataDir);
        return Activator.CreateInstance(type)!;
    }

    /// <summary>Assemblies up to this size are searched by walking their type list.</summary>
    public const long TypeListScanLimitBytes = 128 * 1024;

    /// <summary>
    /// Finds a type by full name. Assembly.GetType(name) parses the name with vectorised searches that are
    /// JIT-compiled at full optimisation on first use: about 9 ms in a fresh backend, most of a cold start's extra
    /// cost over a bare process. Walking a small assembly's type list takes about 0.3 ms instead; a large assembly
    /// would load too many types (time and memory), so it is searched by name, as are names the walk does not match.
    /// </summary>
    private static Type? FindType(Assembly asm, string path, string typeName)
    {
        if (FileStat.TryStat(path) is { Size: <= TypeListScanLimitBytes })
        {
            Type?[] types;
            try
            {
                types = asm.GetTypes();
            }
            catch (ReflectionTypeLoadException e)
            {
                types = e.Types; // the types that did load; a broken one elsewhere in the assembly is not ours to report
            }
            foreach (var t in types)
                if (t is not null && string.Equals(t.FullName, typeName))
                    return t;
        }
        return asm.GetType(typeName, throwOnError: false);
    }

    private static Type ResolveType(string entry, string dataDir) =>
        ResolveType(entry, dataDir, typeof(IBackgroundWorker), typeof(IAsyncBackgroundWorker));

    /// <summary>The connection worker <paramref name="entry"/> names, made: an <see cref="IConnectionWorker"/> or an
    /// <see cref="IAsyncConnectionWorker"/>.</summary>
    public static object ResolveConnectionWorker(string entry, string dataDir) =>
        Activator.CreateInstance(ResolveType(entry, dataDir, typeof(IConnectionWorker), typeof(IAsyncConnectionWorker)))!;

    private static Type ResolveType(string entry, string dataDir, Type syncInterface, Type asyncInterface)
    {
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
            asm = WorkerLoadContext.Load(path);
        }
        catch (Exception e) when (e is BadImageFormatException or FileLoadException or IOException)
        {
            throw new WorkerLoadException($"could not load worker library \"{path}\": {e.Message}");
        }
        var type = FindType(asm, path, typeName)
                   ?? throw new WorkerLoadException($"could not find type \"{typeName}\" in worker library \"{path}\"");
        bool isSync = syncInterface.IsAssignableFrom(type), isAsync = asyncInterface.IsAssignableFrom(type);
        if (!isSync && !isAsync)
            throw new WorkerLoadException(
                $"type \"{typeName}\" in \"{path}\" does not implement {syncInterface.FullName} or {asyncInterface.FullName}");
        if (isSync && isAsync)
            throw new WorkerLoadException(
                $"type \"{typeName}\" in \"{path}\" implements both {syncInterface.FullName} and {asyncInterface.FullName}",
                "A worker implements one of them: which one would run is not obvious from the code.");
        if (type.IsAbstract || type.GetConstructor(Type.EmptyTypes) is null)
            throw new WorkerLoadException($"type \"{typeName}\" in \"{path}\" needs a public parameterless constructor");
        return type;
    }
}

internal sealed class WorkerLoadException(string message, string? hint = null) : Exception(message)
{
    public string? Hint { get; } = hint;
}
