using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;

// The bare .NET baseline process. Each mode is a method of its own, so that the code of the others is never prepared.
//   (no argument)        print "hello" and exit (start-to-exit figures)
//   wait                 sleep until killed, printing nothing (memory and idle-CPU figures)
//   stamp DIR            write Stopwatch.GetTimestamp() (CLOCK_MONOTONIC ns) to DIR/PID the moment Main runs, and exit
//   reflect DLL TYPE [scan]  time what resolving a worker type costs in a fresh process: load DLL, find TYPE
//                        (Assembly.GetType, or with "scan" a walk of Assembly.GetTypes() as WorkerResolver does for
//                        small assemblies), GetConstructor, CreateInstance, then a second lookup; prints milliseconds
//   client PORT          one connection as a connection backend holds one (memory figures of idle sessions): connect to
//                        127.0.0.1:PORT, answer each "PING\r\n" with "+PONG\r\n" (System.Net.Sockets, blocking), exit at EOF
if (args.Length == 0)
    Modes.Hello();
else if (args[0] == "wait")
    Modes.Wait();
else if (args[0] == "stamp" && args.Length == 2)
    Modes.Stamp(args[1]);
else if (args[0] == "client" && args.Length == 2)
    Modes.Client(int.Parse(args[1], CultureInfo.InvariantCulture));
else if (args[0] == "reflect" && args.Length is 3 or 4)
    Modes.Reflect(args[1], args[2], scan: args.Length == 4 && args[3] == "scan");

internal static class Modes
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Hello() => Console.WriteLine("hello");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Wait() => Thread.Sleep(Timeout.Infinite);

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Client(int port)
    {
        using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
            System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        s.Connect(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port));
        var buffer = new byte[16 * 1024];
        while (s.Receive(buffer) > 0)
            s.Send("+PONG\r\n"u8);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Stamp(string dir)
    {
        long now = Stopwatch.GetTimestamp();
        string path = Path.Combine(dir, Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        File.WriteAllText(path + ".tmp", now.ToString(CultureInfo.InvariantCulture));
        File.Move(path + ".tmp", path);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Reflect(string dll, string typeName, bool scan)
    {
        // A backend has the engine and the worker SDK loaded before it resolves a worker: so does this process.
        foreach (string name in new[] { "Postmaster.Shmem.dll", "Postmaster.Workers.dll" })
        {
            string api = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(dll))!, name);
            if (File.Exists(api))
                AssemblyLoadContext.Default.LoadFromAssemblyPath(api);
        }
        long t0 = Stopwatch.GetTimestamp();
        var asm = AssemblyLoadContext.Default.LoadFromAssemblyPath(dll);
        long t1 = Stopwatch.GetTimestamp();
        Type Find() => scan ? asm.GetTypes().Single(t => t.FullName == typeName) : asm.GetType(typeName, throwOnError: true)!;
        var type = Find();
        long t2 = Stopwatch.GetTimestamp();
        var ctor = type.GetConstructor(Type.EmptyTypes);
        object? first = Activator.CreateInstance(type);
        long t3 = Stopwatch.GetTimestamp();
        var again = Find();
        object? second = Activator.CreateInstance(again);
        long t4 = Stopwatch.GetTimestamp();
        GC.KeepAlive(ctor);
        GC.KeepAlive(first);
        GC.KeepAlive(second);
        Console.WriteLine(string.Join(' ', new[] { t1 - t0, t2 - t1, t3 - t2, t4 - t3 }
            .Select(t => (t * 1000.0 / Stopwatch.Frequency).ToString("0.000", CultureInfo.InvariantCulture))));
    }
}
