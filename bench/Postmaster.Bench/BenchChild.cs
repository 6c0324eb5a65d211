using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;

namespace Postmaster.Bench;

/// <summary>
/// A helper process for a suite: this same executable re-invoked as <c>--child &lt;suite&gt; args...</c>. It reports
/// on stdout ("ready" and the like); Dispose kills it if it is still running.
/// </summary>
public sealed class BenchChild : IDisposable
{
    public const string ChildFlag = "--child";

    private static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(60);

    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = new();

    private BenchChild(Process process)
    {
        _process = process;
    }

    public static BenchChild Start(string suite, params string[] args)
    {
        string exe = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which executable is running");
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet") // started as "dotnet Postmaster.Bench.dll"
            psi.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        psi.ArgumentList.Add(ChildFlag);
        psi.ArgumentList.Add(suite);
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        var process = new Process { StartInfo = psi };
        var child = new BenchChild(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                child._lines.Add(e.Data);
        };
        process.Start();
        process.BeginOutputReadLine();
        Affinity.PinChild(process);
        return child;
    }

    /// <summary>Sends <paramref name="line"/> to the child's stdin (a start signal).</summary>
    public void WriteLine(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    /// <summary>Waits (bounded) for a stdout line starting with <paramref name="prefix"/>.</summary>
    public string WaitForLine(string prefix)
    {
        var sw = Stopwatch.StartNew();
        while (_lines.TryTake(out var line, WaitLimit - sw.Elapsed > TimeSpan.Zero ? WaitLimit - sw.Elapsed : TimeSpan.Zero))
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal))
                return line;
        }
        throw new TimeoutException($"bench child did not print \"{prefix}\" within {WaitLimit.TotalSeconds:0}s");
    }

    public void WaitForExit()
    {
        if (!_process.WaitForExit(WaitLimit))
            throw new TimeoutException("bench child did not exit");
        if (_process.ExitCode != 0)
            throw new InvalidOperationException($"bench child exited with code {_process.ExitCode}");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit(WaitLimit);
        }
        _process.Dispose();
    }
}
