using System.Diagnostics;
using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>Leaves an orphan behind (for the init process's reaping): a shell puts a subshell in the background that
/// exits with code 3 a moment later, prints its pid and exits, so the subshell is re-parented to the nearest child
/// subreaper or process 1. The pid goes to the file named by the argument; then the worker waits to be stopped.</summary>
public sealed class OrphanWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("( sleep 0.3; exit 3 ) </dev/null >/dev/null 2>&1 & echo $!");
        using (var shell = Process.Start(psi) ?? throw new InvalidOperationException("could not start /bin/sh"))
        {
            string pid = shell.StandardOutput.ReadLine() ?? throw new InvalidOperationException("the shell printed no pid");
            shell.WaitForExit();
            File.WriteAllText(context.Argument + ".tmp", pid + "\n");
            File.Move(context.Argument + ".tmp", context.Argument);
        }
        context.Stopping.WaitHandle.WaitOne();
        return 0;
    }
}
