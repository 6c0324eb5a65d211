using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Backends;

/// <summary>worker.NAME.globalization: backends run invariant globalization unless their worker asks for ICU, and an ICU
/// worker never runs in a (invariant) pool member.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class GlobalizationTests
{
    private static string Entry => $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers.CultureWorker";

    [Fact]
    public void Workers_are_invariant_by_default_and_get_real_cultures_with_globalization_icu()
    {
        using var pm = new PmInstance("glob");
        pm.InitBare($"worker.inv.entry = '{Entry}'", "worker.inv.restart = never",
            $"worker.icu.entry = '{Entry}'", "worker.icu.restart = never", "worker.icu.globalization = icu",
            "backend_pool_size = 2");
        pm.StartOk();
        pm.WaitForLog("culture de-DE: CultureNotFoundException");
        pm.WaitForLog("culture de-DE: decimal separator ','"); // so it did not run in an (invariant) pool member
        Wait.Until(() => pm.StatusJson().GetProperty("workers").EnumerateArray().All(w => w.GetProperty("state").GetString() == "done"),
            "both workers done");
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    [Fact]
    public void An_unknown_globalization_value_names_the_allowed_values()
    {
        using var pm = new PmInstance("glob-bad");
        pm.InitBare("worker.w.entry = 'idle'", "worker.w.globalization = 'de'");
        var r = pm.Start();
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("invalid value for parameter \"worker.w.globalization\": \"de\"", r.Output);
        Assert.Contains("Available values: invariant, icu.", r.Output);
        Assert.Contains("postmaster.conf\" line", r.Output);
    }
}
