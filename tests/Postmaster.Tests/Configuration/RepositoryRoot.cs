namespace Postmaster.Tests.Configuration;

/// <summary>Finds the repository checkout the tests were built from (the directory holding Postmaster.sln).</summary>
public static class RepositoryRoot
{
    private const string SolutionFile = "Postmaster.sln";

    public static string Path { get; } = Find();

    private static string Find()
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(directory.FullName, SolutionFile)))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no {SolutionFile} above {AppContext.BaseDirectory}");
    }
}
