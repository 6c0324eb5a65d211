namespace Postmaster.Bench;

/// <summary>Where run.sh put the executables (POSTMASTER_OUT, default ./out).</summary>
public static class BenchPaths
{
    public static readonly string Out = Environment.GetEnvironmentVariable("POSTMASTER_OUT") is { Length: > 0 } o
        ? o : Path.Combine(Directory.GetCurrentDirectory(), "out");

    public static string Postmaster => Path.Combine(Out, "postmaster");

    public static string Hello => Path.Combine(Out, "bench-hello", "hello");
}
