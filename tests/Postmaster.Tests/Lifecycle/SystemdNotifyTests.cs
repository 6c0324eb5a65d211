using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Postmaster.Testing;
using Postmaster.Tests.Configuration;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Lifecycle;

/// <summary>sd_notify as systemd sees it, with a datagram socket of the test's own as NOTIFY_SOCKET: READY with
/// MAINPID once ready, WATCHDOG from the supervisor loop at half of WATCHDOG_USEC, RELOADING (with MONOTONIC_USEC) then
/// READY around a reload, STOPPING at shutdown; and no backend inherits the variables.</summary>
public sealed class SystemdNotifyTests
{
    [Fact]
    public void The_supervisor_notifies_systemd_and_its_backends_never_see_the_socket()
    {
        string path = Path.Combine(Path.GetTempPath(), $"pm-notify-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40] + ".sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        try
        {
            var received = new List<string>();
            using var pm = Clusters.Bare("sd-notify", "worker.w.entry = 'idle'");
            pm.Options.Environment["NOTIFY_SOCKET"] = path;
            pm.Options.Environment["WATCHDOG_USEC"] = "200000";
            pm.Start();
            int pid = pm.PostmasterPid;
            string ready = Next(listener, received, m => m.StartsWith("READY=1", StringComparison.Ordinal));
            Assert.Contains($"MAINPID={pid}", ready.Split('\n'));
            Assert.Contains("STATUS=ready", ready.Split('\n'));
            for (int i = 0; i < 3; i++)
                Next(listener, received, m => m == "WATCHDOG=1");

            pm.Reload();
            string reloading = Next(listener, received, m => m.StartsWith("RELOADING=1", StringComparison.Ordinal));
            Assert.Matches(new Regex(@"(^|\n)MONOTONIC_USEC=[0-9]+($|\n)"), reloading);
            Next(listener, received, m => m.StartsWith("READY=1", StringComparison.Ordinal));

            int backend = pm.WaitForWorker("w", WorkerState.Running).Single().Pid!.Value;
            string environment = File.ReadAllText($"/proc/{backend}/environ");
            Assert.DoesNotContain("NOTIFY_SOCKET=", environment);
            Assert.DoesNotContain("WATCHDOG_USEC=", environment);

            pm.Stop();
            Next(listener, received, m => m.StartsWith("STOPPING=1", StringComparison.Ordinal));
            pm.AssertNothingLeaked();
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void The_sample_unit_file_passes_systemd_analyze_verify()
    {
        string tool = new[] { "/usr/bin/systemd-analyze", "/bin/systemd-analyze" }.FirstOrDefault(File.Exists) ?? "/usr/bin/systemd-analyze";
        Assert.True(File.Exists(tool), $"{tool} is missing (Debian package systemd)");
        string unit = File.ReadAllText(Path.Combine(RepositoryRoot.Path, "config", "postmaster.service"));
        Assert.Contains("Type=notify", unit);
        Assert.Contains("WatchdogSec=", unit);
        // The unit names the installed path; verify it against the built executable (verify checks that it exists).
        string dir = Directory.CreateTempSubdirectory("pm-unit-").FullName;
        try
        {
            string path = Path.Combine(dir, "postmaster.service");
            File.WriteAllText(path, unit.Replace("/opt/postmaster/postmaster", Path.Combine(Paths.OutDir, "postmaster"), StringComparison.Ordinal));
            var psi = new System.Diagnostics.ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("verify");
            psi.ArgumentList.Add(path);
            using var p = System.Diagnostics.Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0 && output.Trim().Length == 0, $"systemd-analyze verify: exit {p.ExitCode}\n{output}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The next datagram that <paramref name="matches"/>, within the suite's timeout; every one read is kept
    /// in <paramref name="received"/> for the failure message.</summary>
    private static string Next(Socket listener, List<string> received, Func<string, bool> matches)
    {
        var buf = new byte[4096];
        var until = DateTime.UtcNow + ClusterOptions.DefaultTimeout;
        while (DateTime.UtcNow < until)
        {
            if (!listener.Poll(TimeSpan.FromMilliseconds(100), SelectMode.SelectRead))
                continue;
            int n = listener.Receive(buf);
            string message = Encoding.UTF8.GetString(buf, 0, n);
            received.Add(message);
            if (matches(message))
                return message;
        }
        throw new Xunit.Sdk.XunitException($"no matching notification; received: {string.Join(" | ", received.Select(r => r.Replace('\n', ' ')))}");
    }
}
