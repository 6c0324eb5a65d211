using System.Text.RegularExpressions;
using Postmaster.Daemon;
using Postmaster.Shmem.Os;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Lifecycle;

/// <summary><c>postmaster start</c> as a container's process 1 (a private PID namespace made with unshare) and with
/// --init (a child subreaper): the real postmaster runs as its child, signals are forwarded, orphans are reaped and
/// logged, and the exit code is the postmaster's.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class InitProcessTests
{
    private static string OrphanWorker => $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers.OrphanWorker";

    [Fact]
    public void With_init_the_postmaster_is_a_child_orphans_are_reaped_and_stop_ends_both()
    {
        using var pm = Clusters.Bare("init-subreaper");
        string pidFile = Path.Combine(pm.DataDirectory, "orphan.pid");
        using var init = ChildProcess.Start(Paths.PostmasterExe, new[]
        {
            "start", "--init", "-D", pm.DataDirectory, "-c", $"worker.o.entry={OrphanWorker}", "-c", $"worker.o.argument={pidFile}",
        });
        string started = init.WaitForLineContaining("postmaster init");
        Assert.Contains($"postmaster init (PID {init.Pid}, child subreaper) started the postmaster", started);
        init.WaitForLineContaining("postmaster is ready");
        int server = pm.PostmasterPid;
        Assert.NotEqual(init.Pid, server);
        Assert.Equal(init.Pid, ParentOf(server));

        string reaped = init.WaitForLineContaining("(reaped by the init process)");
        int orphan = int.Parse(File.ReadAllText(pidFile).Trim());
        Assert.Contains($"orphaned process (PID {orphan}) exited with exit code 3", reaped);
        Assert.Contains($"[{init.Pid}]", reaped);

        var stop = PostmasterCli.Run("stop", "-D", pm.DataDirectory, "-m", "fast");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.Equal(0, init.WaitForExit());
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void As_process_1_the_postmaster_runs_as_its_child_and_a_forwarded_sigterm_is_a_smart_shutdown()
    {
        using var pm = Clusters.Bare("init-pid1");
        string pidFile = Path.Combine(pm.DataDirectory, "orphan.pid");
        using var ns = ChildProcess.Start("unshare", new[]
        {
            "--pid", "--fork", "--mount-proc", Paths.PostmasterExe,
            "start", "-D", pm.DataDirectory, "-c", $"worker.o.entry={OrphanWorker}", "-c", $"worker.o.argument={pidFile}",
        });
        Assert.Contains("[1] LOG:  postmaster init (PID 1) started the postmaster (PID ", ns.WaitForLineContaining("postmaster init"));
        ns.WaitForLineContaining("postmaster is ready");
        Assert.Matches(new Regex(@"\[1\] LOG:  orphaned process \(PID [0-9]+\) exited with exit code 3 \(reaped by the init process\)"),
            ns.WaitForLineContaining("(reaped by the init process)"));

        // The namespace's process 1 is unshare's only child (ours: we started unshare).
        int init = int.Parse(File.ReadAllText($"/proc/{ns.Pid}/task/{ns.Pid}/children").Trim());
        Assert.True(init > 1);
        ProcessControl.Signal(init, Signals.SIGTERM);
        ns.WaitForLineContaining("received smart shutdown request");
        ns.WaitForLineContaining("postmaster is shut down");
        Assert.Equal(0, ns.WaitForExit());
        Assert.False(File.Exists(Path.Combine(pm.DataDirectory, "postmaster.pid")));
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Init_cannot_be_combined_with_detach()
    {
        using var pm = Clusters.Bare("init-detach");
        var r = PostmasterCli.Run("start", "--init", "--detach", "-D", pm.DataDirectory);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--init runs the server in the foreground; it cannot be combined with --detach or --log", r.Stderr);
        Assert.False(File.Exists(Path.Combine(pm.DataDirectory, "postmaster.pid")));
    }

    [Theory]
    [InlineData("start -D /d", 1, "start -D /d")]
    [InlineData("start -D /d --init", 77, "start -D /d")]
    [InlineData("start --init -D /d -c a=b", 1, "start -D /d -c a=b")]
    [InlineData("start -D /d", 77, null)]
    [InlineData("start --detach -D /d", 1, null)]
    [InlineData("start -l /x -D /d", 1, null)]
    [InlineData("start --log=/x -D /d", 1, null)]
    [InlineData("start --log:/x -D /d", 1, null)]
    [InlineData("start -l/x -D /d", 1, null)]
    [InlineData("start --detach:true -D /d", 1, null)]
    [InlineData("start --detach=true -D /d", 1, null)]
    [InlineData("start --detach:false -D /d", 1, "start --detach:false -D /d")]
    [InlineData("start -D /d --daemon-child", 1, null)]
    [InlineData("status -D /d", 1, null)]
    [InlineData("start -D --init", 77, null)] // "--init" is the -D value here
    [InlineData("start -c --init -D /d", 77, null)]
    public void Who_runs_as_the_init_is_decided_from_the_arguments(string args, int pid, string? child)
    {
        string[]? result = InitProcess.ChildArguments(args.Split(' '), pid);
        Assert.Equal(child, result is null ? null : string.Join(' ', result));
    }

    private static int ParentOf(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
    }
}
