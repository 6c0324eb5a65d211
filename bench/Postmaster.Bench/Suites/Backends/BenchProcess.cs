using System.Diagnostics;
using Postmaster.Shmem.Os;

namespace Postmaster.Bench.Suites.Backends;

/// <summary>
/// Child processes of the bench (CLI runs, bare .NET baseline processes) through <see cref="ProcessSpawner"/>, reaped
/// by pid. Output goes to a scratch file that is shown only when a process fails.
/// </summary>
internal static class BenchProcess
{
    private static readonly string s_outputPath = Path.Combine(Path.GetTempPath(), $"pmbench-{Environment.ProcessId}-output.txt");

    /// <summary>The scratch file goes when the bench process ends (it is only ever needed while a child runs).</summary>
    static BenchProcess() => AppDomain.CurrentDomain.ProcessExit += (_, _) => File.Delete(s_outputPath);

    public static void RunCli(params string[] args) => Run(BenchPaths.Postmaster, null, args);

    /// <summary>Runs to completion; throws with the process's output if it exits non-zero.</summary>
    public static void Run(string exe, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        int code = TryRun(exe, environment, args);
        if (code != 0)
            throw new InvalidOperationException($"{exe} {string.Join(' ', args)} failed (exit {code}): {File.ReadAllText(s_outputPath)}");
    }

    /// <summary>Runs to completion and returns what it printed; throws if it exits non-zero.</summary>
    public static string Output(string exe, params string[] args)
    {
        Run(exe, null, args);
        return File.ReadAllText(s_outputPath);
    }

    /// <summary>Runs to completion and returns the exit code (-1 when killed by a signal).</summary>
    public static int TryRun(string exe, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        int pid;
        using (var output = File.OpenHandle(s_outputPath, FileMode.Create, FileAccess.Write))
            pid = ProcessSpawner.Spawn(new SpawnOptions(exe, args, environment, StdinPath: "/dev/null",
                StdoutFd: (int)output.DangerousGetHandle()));
        var exit = WaitForExit(pid);
        return exit.ExitCode ?? -1;
    }

    /// <summary>Starts a process without waiting (stdout/stderr to /dev/null); reap it with <see cref="WaitForExit"/>.</summary>
    public static int Start(string exe, params string[] args)
    {
        using var devNull = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Write);
        return ProcessSpawner.Spawn(new SpawnOptions(exe, args, StdinPath: "/dev/null", StdoutFd: (int)devNull.DangerousGetHandle()));
    }

    public static ChildExit WaitForExit(int pid)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (ProcessSpawner.TryReap(pid) is { } exit)
                return exit;
            if (sw.Elapsed > BenchServer.WaitLimit)
                throw new TimeoutException($"process {pid} did not exit");
            Thread.Sleep(1);
        }
    }

    /// <summary>SIGKILLs and reaps processes this bench started.</summary>
    public static void KillAll(IEnumerable<int> pids)
    {
        var list = pids.ToList();
        foreach (int pid in list)
            ProcessControl.Signal(pid, Signals.SIGKILL);
        foreach (int pid in list)
            WaitForExit(pid);
    }

    public static void DeleteScratch() => File.Delete(s_outputPath);
}
