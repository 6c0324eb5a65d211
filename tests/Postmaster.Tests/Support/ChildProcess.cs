using System.Collections.Concurrent;
using System.Diagnostics;
using Postmaster.Testing;

namespace Postmaster.Tests.Support;

/// <summary>
/// A real child process with its stdout/stderr captured line by line (the RemoteExecutor analogue). Dispose kills
/// it if it is still running, so a failing test leaves no process behind.
/// </summary>
public sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = new();
    private readonly ConcurrentQueue<string> _all = new();

    private ChildProcess(Process process)
    {
        _process = process;
    }

    public int Pid => _process.Id;

    public Process Process => _process;

    /// <summary>Every line seen so far on stdout and stderr.</summary>
    public string Output => string.Join('\n', _all);

    public static ChildProcess Start(string exe, IEnumerable<string> args, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        var p = new Process { StartInfo = psi };
        var child = new ChildProcess(p);
        p.OutputDataReceived += (_, e) => child.OnLine(e.Data);
        p.ErrorDataReceived += (_, e) => child.OnLine(e.Data);
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return child;
    }

    /// <summary>Starts TestChild with a scenario name and its arguments.</summary>
    public static ChildProcess TestChild(string scenario, params string[] args) =>
        Start(Paths.TestChildExe, new[] { scenario }.Concat(args));

    private void OnLine(string? line)
    {
        if (line is null)
            return;
        _all.Enqueue(line);
        _lines.Add(line);
    }

    /// <summary>True when a line starting with <paramref name="prefix"/> has arrived (it stays for <see cref="WaitForLine"/>).</summary>
    public bool HasLine(string prefix) => _all.Any(line => line.StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>Waits for a line that starts with <paramref name="prefix"/> and returns it.</summary>
    public string WaitForLine(string prefix, TimeSpan? timeout = null) =>
        WaitFor(line => line.StartsWith(prefix, StringComparison.Ordinal), $"starting with \"{prefix}\"", timeout);

    /// <summary>Waits for a line that contains <paramref name="text"/> and returns it.</summary>
    public string WaitForLineContaining(string text, TimeSpan? timeout = null) =>
        WaitFor(line => line.Contains(text, StringComparison.Ordinal), $"containing \"{text}\"", timeout);

    private string WaitFor(Func<string, bool> match, string what, TimeSpan? timeout)
    {
        var limit = timeout ?? ClusterOptions.DefaultTimeout;
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var left = limit - sw.Elapsed;
            if (left <= TimeSpan.Zero || !_lines.TryTake(out var line, left))
                throw new TimeoutException($"timed out waiting for a line {what}; output so far:\n{Output}");
            if (match(line))
                return line;
        }
    }

    public void WriteLine(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    /// <summary>Waits for exit within the global timeout and returns the exit code.</summary>
    public int WaitForExit(TimeSpan? timeout = null)
    {
        if (!_process.WaitForExit(timeout ?? ClusterOptions.DefaultTimeout))
            throw new TimeoutException($"process {Pid} did not exit; output so far:\n{Output}");
        _process.WaitForExit(); // drain the output readers
        return _process.ExitCode;
    }

    public void Kill(int signal) => Postmaster.Shmem.Os.ProcessControl.Signal(Pid, signal);

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(ClusterOptions.DefaultTimeout);
            }
        }
        catch (InvalidOperationException)
        {
            // never started or already reaped: nothing to clean up
        }
        _process.Dispose();
    }
}
