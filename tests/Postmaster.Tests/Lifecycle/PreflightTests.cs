using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Lifecycle;

/// <summary>The shared-memory pre-flight on real limits: a private mount namespace with a small tmpfs on /dev/shm
/// (Docker's situation), and a private IPC namespace with a low kernel.shmmax. Both need root (unshare).</summary>
[Collection(IntegrationCollection.Name)]
public sealed class PreflightTests
{
    [Fact]
    public void A_small_dev_shm_is_a_warning_with_the_fix_and_the_server_still_starts()
    {
        using var pm = Clusters.Bare("preflight-devshm", "shared_memory_type = posix", "dynamic_shared_memory_type = posix");
        using var child = ChildProcess.Start("unshare", new[]
        {
            "--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o size=32m tmpfs /dev/shm && exec \"$0\" \"$@\"",
            Paths.PostmasterExe, "start", "-D", pm.DataDirectory,
        });
        string warning = child.WaitForLineContaining("WARNING:");
        Assert.Contains("\"/dev/shm\" has 32 MB free, less than the", warning);
        Assert.Contains("--shm-size", child.WaitForLineContaining("HINT:"));
        child.WaitForLineContaining("postmaster is ready");
        child.Kill(Postmaster.Shmem.Os.Signals.SIGINT);
        Assert.Equal(0, child.WaitForExit());
        Assert.False(File.Exists(Path.Combine(pm.DataDirectory, "postmaster.pid")));
    }

    [Fact]
    public void A_main_segment_beyond_shmmax_is_warned_about_before_the_creation_fails()
    {
        using var pm = Clusters.Bare("preflight-shmmax", "shared_memory_type = sysv", "shared_memory_size = 16MB");
        using var child = ChildProcess.Start("unshare", new[]
        {
            "--ipc", "sh", "-c", "echo 4194304 > /proc/sys/kernel/shmmax && exec \"$0\" \"$@\"",
            Paths.PostmasterExe, "start", "-D", pm.DataDirectory,
        });
        string warning = child.WaitForLineContaining("WARNING:");
        Assert.Contains("more than the kernel's largest System V segment (kernel.shmmax = 4194304)", warning);
        Assert.Contains("sysctl -w kernel.shmmax=", child.WaitForLineContaining("HINT:"));
        child.WaitForLineContaining("FATAL:");
        Assert.Equal(1, child.WaitForExit());
        Assert.DoesNotContain("   at ", child.Output);
        Assert.False(File.Exists(Path.Combine(pm.DataDirectory, "postmaster.pid")));
    }
}
