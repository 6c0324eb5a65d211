using Postmaster.Testing;
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
        using var pm = Clusters.Bare("glob", $"worker.inv.entry = '{Entry}'", "worker.inv.restart = never",
            $"worker.icu.entry = '{Entry}'", "worker.icu.restart = never", "worker.icu.globalization = icu",
            "backend_pool_size = 2");
        pm.Start();
        pm.WaitForWorker("inv", WorkerState.Done);
        pm.WaitForWorker("icu", WorkerState.Done);
        var log = pm.ServerLog();
        Assert.Contains("culture de-DE: CultureNotFoundException", log);
        Assert.Contains("culture de-DE: decimal separator ','", log); // so it did not run in an (invariant) pool member
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void An_unknown_globalization_value_names_the_allowed_values()
    {
        using var pm = Clusters.Bare("glob-bad", "worker.w.entry = 'idle'", "worker.w.globalization = 'de'");
        var r = pm.TryStart();
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("invalid value for parameter \"worker.w.globalization\": \"de\"", r.Output);
        Assert.Contains("postmaster.conf\" line", r.Output);
        Assert.Contains("Available values: invariant, icu.", r.Output);
    }
}
