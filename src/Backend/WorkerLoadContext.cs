using System.Reflection;
using System.Runtime.Loader;

namespace Postmaster.Backend;

/// <summary>
/// The load context of one worker library (a plugin context, one per library path). Its dependencies are found the
/// way the library's own .deps.json says (or next to it), so a worker may bring libraries of its own, and two worker
/// libraries, or two versions of one (a deployment in a new directory while pool members preloaded the old one), load
/// side by side. The worker SDK (Postmaster.Workers) and the engine under it (Postmaster.Shmem, whose exception types
/// the SDK throws) always come from the default context, named here whether or not they are loaded yet, and so does
/// whatever else the backend has loaded (the framework): <c>IBackgroundWorker</c> and <c>WorkerContext</c> are the
/// same types for every worker even when a library ships its own copies of those assemblies.
/// </summary>
internal sealed class WorkerLoadContext : AssemblyLoadContext
{
    /// <summary>The backend's own assemblies a worker library links against: never loaded from its directory.</summary>
    private const string SdkAssembly = "Postmaster.Workers", EngineAssembly = "Postmaster.Shmem";

    private static readonly Dictionary<string, WorkerLoadContext> s_byPath = new(StringComparer.Ordinal);
    private readonly AssemblyDependencyResolver _resolver;

    private WorkerLoadContext(string path) : base("worker " + path) => _resolver = new AssemblyDependencyResolver(path);

    /// <summary>The library at <paramref name="path"/> (a full path), loaded once per process.</summary>
    public static Assembly Load(string path)
    {
        lock (s_byPath)
        {
            if (!s_byPath.TryGetValue(path, out var context))
                s_byPath[path] = context = new WorkerLoadContext(path);
            return context.LoadFromAssemblyPath(path);
        }
    }

    protected override Assembly? Load(AssemblyName name)
    {
        if (name.Name is SdkAssembly or EngineAssembly)
            return null; // the default context's copy (it is on the backend's trusted platform assembly list)
        foreach (var loaded in Default.Assemblies)
            if (string.Equals(loaded.GetName().Name, name.Name, StringComparison.Ordinal))
                return null; // the backend's own copy
        string? path = _resolver.ResolveAssemblyToPath(name);
        return path is null ? null : LoadFromAssemblyPath(path); // null: the default context (the framework) decides
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        string? path = _resolver.ResolveUnmanagedDllToPath(unmanagedDllName);
        return path is null ? IntPtr.Zero : LoadUnmanagedDllFromPath(path);
    }
}
