using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Os;

namespace Postmaster.Supervision;

/// <summary>
/// Turns signals into <see cref="PmEvent"/>s on one queue (PostgreSQL's pending_pm_* flags + SetLatch). Uses
/// PosixSignalRegistration (Mono's UnixSignal is broken on .NET 10) and cancels the default action of every signal
/// it handles. SIGTERM = smart, SIGINT = fast, SIGQUIT = immediate shutdown; SIGHUP = reload.
/// </summary>
public sealed class SignalRouter : IDisposable
{
    private const PosixSignal Sigusr1 = (PosixSignal)10; // raw number: not among the named PosixSignal values
    private readonly List<PosixSignalRegistration> _registrations = new();
    private readonly BlockingCollection<PmEvent> _queue;

    public SignalRouter(BlockingCollection<PmEvent> queue)
    {
        _queue = queue;
        Register(PosixSignal.SIGTERM, new PmEvent.ShutdownRequested(ShutdownMode.Smart));
        Register(PosixSignal.SIGINT, new PmEvent.ShutdownRequested(ShutdownMode.Fast));
        Register(PosixSignal.SIGQUIT, new PmEvent.ShutdownRequested(ShutdownMode.Immediate));
        Register(PosixSignal.SIGHUP, new PmEvent.ReloadRequested());
        Register(PosixSignal.SIGCHLD, new PmEvent.ChildSignal());
        Register(Sigusr1, new PmEvent.PmSignal());
    }

    private void Register(PosixSignal signal, PmEvent ev)
    {
        int raw = signal switch
        {
            PosixSignal.SIGTERM => Signals.SIGTERM,
            PosixSignal.SIGINT => Signals.SIGINT,
            PosixSignal.SIGQUIT => Signals.SIGQUIT,
            PosixSignal.SIGHUP => Signals.SIGHUP,
            PosixSignal.SIGCHLD => Signals.SIGCHLD,
            _ => (int)signal,
        };
        ProcessControl.UnignoreSignal(raw); // an inherited SIG_IGN would make the registration a no-op
        _registrations.Add(PosixSignalRegistration.Create(signal, ctx =>
        {
            ctx.Cancel = true;
            _queue.TryAdd(ev);
        }));
    }

    public void Dispose()
    {
        foreach (var r in _registrations)
            r.Dispose();
    }
}
