namespace Postmaster.Testing;

/// <summary>Exit code and output of one command (a <c>postmaster</c> command or any process run by
/// <see cref="ProcessRunner"/>).</summary>
/// <param name="ExitCode">The process's exit code.</param>
/// <param name="Stdout">Everything it wrote on standard output.</param>
/// <param name="Stderr">Everything it wrote on standard error.</param>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Standard output followed by standard error.</summary>
    public string Output => Stdout + Stderr;

    /// <summary>Exit code and both outputs, for failure messages.</summary>
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}
