using System.CommandLine;
using Postmaster.Configuration;
using Postmaster.Daemon;

namespace Postmaster.Cli;

/// <summary><c>postmaster init -D DIR</c>: a new data directory (mode 0700) with a default postmaster.conf.</summary>
public static class InitCommand
{
    public static Command Create()
    {
        var cmd = new Command("init", "Create a new data directory with a default configuration") { CliOptions.DataDir };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            DataDirectory.Initialize(dir, DefaultConfigFile.Render()); // StartupException: CliBoundary prints it
            Console.WriteLine($"initialized data directory \"{dir}\"");
            Console.WriteLine($"Start the server with: postmaster start -D {dir}");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
