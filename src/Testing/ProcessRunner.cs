using System.Diagnostics;

namespace Postmaster.Testing;

/// <summary>Runs a program to completion with its output captured, bounded by a timeout (a program that does not
/// finish in time is killed and the wait fails). Used for every <c>postmaster</c> command; tests may run their own
/// tools the same way.</summary>
public static class ProcessRunner
{
    /// <summary>
    /// Runs <paramref name="program"/> with <paramref name="arguments"/> (each passed as one argument, no shell),
    /// with <paramref name="environment"/> added to this process's environment (an empty value sets the variable to
    /// the empty string), and waits for it within <paramref name="timeout"/> (default
    /// <see cref="ClusterOptions.DefaultTimeout"/>). Throws <see cref="ClusterTimeoutException"/> (after killing it)
    /// when it does not finish in time, and <see cref="ClusterException"/> when it cannot be started. It runs in
    /// <paramref name="workingDirectory"/> when given, else in this process's current directory.
    /// </summary>
    public static CliResult Run(string program, IEnumerable<string> arguments, IEnumerable<KeyValuePair<string, string>>? environment = null,
        TimeSpan? timeout = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var a in arguments)
            psi.ArgumentList.Add(a);
        if (environment is not null)
            foreach (var (name, value) in environment)
                psi.Environment[name] = value;
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new ClusterException($"could not start \"{program}\"");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ClusterException($"could not start \"{program}\": {e.Message}", e);
        }
        using (p)
        {
            p.StandardInput.Close(); // a command that reads stdin sees end-of-file, never a hang
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            var limit = timeout ?? ClusterOptions.DefaultTimeout;
            if (!p.WaitForExit(limit))
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
                throw new ClusterTimeoutException(
                    $"{program} {string.Join(' ', psi.ArgumentList)} did not finish within {limit.TotalSeconds:0.#} s\n" +
                    $"stdout:\n{stdout.Result}\nstderr:\n{stderr.Result}");
            }
            p.WaitForExit(); // drains the output readers
            return new CliResult(p.ExitCode, stdout.Result, stderr.Result);
        }
    }
}
