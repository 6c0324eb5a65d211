using System.Text.Json;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Cli;

/// <summary>Issue 11 #10 and #2 (CLI side): status of a running server is 0 whatever its configuration file says;
/// a backend that has no pid yet is printed with "pid": null (text: "-"), never 0.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class StatusTests
{
    [Fact]
    public void Status_of_a_running_server_is_0_when_its_configuration_file_was_deleted()
    {
        using var pm = Clusters.Bare("noconf");
        pm.Start();
        File.Delete(pm.ConfigPath);
        var r = pm.Run("status");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains($"server is running (PID: {pm.PostmasterPid})", r.Stdout);
        Assert.True(pm.Status().Running);
        pm.Stop();
        Assert.Equal(4, pm.Run("status").ExitCode); // stopped: now it is not a data directory
    }

    [Fact]
    public void A_backend_without_a_pid_yet_is_listed_with_a_null_pid()
    {
        using var pm = Clusters.Bare("nullpid", "max_backends = 4");
        pm.Start();
        // A slot the server does not use (the last one), shown as a backend that is starting: assigned, no pid yet.
        using var shmem = pm.AttachShmem();
        int slot = shmem.Slots.Count - 1;
        shmem.Slots.Assign(slot, 999_999, "unborn", "idle", "", pooled: false);
        try
        {
            var status = pm.Run("status", "--json");
            Assert.True(status.ExitCode == 0, status.ToString());
            var row = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("backends").EnumerateArray()
                .Single(b => b.GetProperty("name").GetString() == "unborn");
            Assert.Equal(JsonValueKind.Null, row.GetProperty("pid").ValueKind);
            Assert.Equal("starting", row.GetProperty("state").GetString());

            var shmemJson = pm.Run("shmem", "--json");
            Assert.True(shmemJson.ExitCode == 0, shmemJson.ToString());
            var slotRow = JsonDocument.Parse(shmemJson.Stdout).RootElement.GetProperty("backendSlots").EnumerateArray()
                .Single(b => b.GetProperty("name").GetString() == "unborn");
            Assert.Equal(JsonValueKind.Null, slotRow.GetProperty("pid").ValueKind);

            var text = pm.Run("status");
            var line = text.Stdout.Split('\n').Single(l => l.Contains("unborn"));
            Assert.Matches(@"^\s+-\s+" + slot + " ", line);
            Assert.DoesNotMatch(@"\b0\s+" + slot + " ", line);
            var shmemText = pm.Run("shmem").Stdout.Split('\n').Single(l => l.Contains("unborn"));
            Assert.Contains("PID        -", shmemText);
        }
        finally
        {
            shmem.Slots.Free(slot);
        }
        pm.Stop();
    }
}
