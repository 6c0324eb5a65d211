namespace Postmaster.Configuration;

/// <summary>Which globalization a worker's backend runs with (<c>worker.NAME.globalization</c>).</summary>
public enum WorkerGlobalization
{
    /// <summary>.NET's invariant globalization: culture data limited to the invariant culture, ordinal-like
    /// comparisons, no ICU loaded (smaller and faster to start; the default, and what pool members run).</summary>
    Invariant,

    /// <summary>Full culture support through the system's ICU library (libicu): <c>CultureInfo.GetCultureInfo("de-DE")</c>
    /// works. Such a worker always gets a fresh process, never a pool member.</summary>
    Icu,
}
