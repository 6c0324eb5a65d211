namespace Postmaster.Configuration;

/// <summary>Value of <c>connection_scheduling_policy</c>. The member order matches the allowed values in
/// <see cref="SettingCatalog"/>.</summary>
public enum CpuSchedulingPolicy
{
    /// <summary>SCHED_BATCH: a woken backend does not preempt the process running on its CPU.</summary>
    Batch,

    /// <summary>SCHED_OTHER: Linux's default.</summary>
    Other,
}
