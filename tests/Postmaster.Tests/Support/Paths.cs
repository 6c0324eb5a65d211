namespace Postmaster.Tests.Support;

/// <summary>Where the built executables are. run.sh publishes the daemon and backend into out/ (POSTMASTER_OUT)
/// and TestChild into out/testchild; the postmaster is found the way the harness finds it.</summary>
public static class Paths
{
    public static readonly string RepoRoot = FindRepoRoot();

    public static readonly string OutDir =
        Environment.GetEnvironmentVariable("POSTMASTER_OUT") is { Length: > 0 } o ? o : Path.Combine(RepoRoot, "out");

    public static string PostmasterExe => Postmaster.Testing.PostmasterBinary.Locate();

    public static string BackendExe => Path.Combine(OutDir, "pm-backend");

    public static string TestChildExe => Path.Combine(OutDir, "testchild", "TestChild");

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Postmaster.sln")))
                return d.FullName;
        throw new InvalidOperationException("cannot find the repository root (Postmaster.sln) above " + AppContext.BaseDirectory);
    }
}
