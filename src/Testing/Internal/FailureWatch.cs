using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Postmaster.Testing.Internal;

/// <summary>
/// Whether the test using a cluster has already failed, so that disposal never hides that failure behind its own
/// (C# replaces an exception in flight with one thrown by a <c>using</c>'s Dispose). Two signs, neither needing a test
/// framework: an exception is being dispatched right now, which is the case in a synchronous <c>using</c>'s Dispose
/// (<see cref="Marshal.GetExceptionPointers"/>, a managed API); and, for <c>await using</c> and fixtures (whose
/// disposal runs after the exception was caught), a failure thrown anywhere in the process since the cluster was
/// created: a first-chance exception that is a <see cref="ClusterException"/> or an assertion failure of a known test
/// framework (its type, or a base type, has one of their names). The second sign is process-wide and also counts a
/// failure that was caught on purpose (<c>Assert.Throws</c>), so it errs towards quiet. Quiet means only that
/// leftovers are not thrown; they are removed all the same.
/// </summary>
internal sealed class FailureWatch : IDisposable
{
    private static readonly string[] s_assertionTypes =
    [
        "Xunit.Sdk.XunitException", "NUnit.Framework.AssertionException", "NUnit.Framework.MultipleAssertException",
        "Microsoft.VisualStudio.TestTools.UnitTesting.UnitTestAssertException", "TUnit.Assertions.Exceptions.AssertionException",
        typeof(ClusterException).FullName!,
    ];

    private volatile bool _assertionSeen;

    public FailureWatch() => AppDomain.CurrentDomain.FirstChanceException += OnFirstChance;

    /// <summary>Either sign (call it on the thread that disposes, first thing).</summary>
    public bool FailureSeen => _assertionSeen || Marshal.GetExceptionPointers() != 0;

    private void OnFirstChance(object? sender, FirstChanceExceptionEventArgs e)
    {
        for (var t = e.Exception.GetType(); t is not null; t = t.BaseType)
            if (Array.IndexOf(s_assertionTypes, t.FullName) >= 0)
            {
                _assertionSeen = true;
                return;
            }
    }

    public void Dispose() => AppDomain.CurrentDomain.FirstChanceException -= OnFirstChance;
}
