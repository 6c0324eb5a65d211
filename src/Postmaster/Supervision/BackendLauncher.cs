using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Os;

namespace Postmaster.Supervision;

/// <summary>
/// Starts pm-backend processes: the one spawn path (posix_spawn, reaped by pid). The parameter block goes through a
/// pipe that becomes the child's descriptor 3 (written before the spawn: it fits the pipe buffer, so nothing blocks).
/// A backend learns of the postmaster's death from PR_SET_PDEATHSIG (see pm-backend's PostmasterDeathWatch). stdout
/// and stderr are the log collector's pipe (<see cref="Logging.LogCollector"/>), so all log lines end up in one stream.
/// </summary>
internal sealed class BackendLauncher
{
    public BackendLauncher(string executable) => Executable = executable;

    public string Executable { get; }

    /// <summary>The log collector's pipe, the backends' stdout and stderr (null: they share the postmaster's). The
    /// postmaster's own stderr then goes along as descriptor <see cref="BackendParameters.FallbackLogFd"/>: a backend
    /// that outlives the postmaster (and so its collector) writes its last lines there as text.</summary>
    public int? LogFd
    {
        get => _logFd;
        init
        {
            _logFd = value;
            if (value is not null)
                _fallback = ProcessSpawner.Duplicate(2, 10);
        }
    }

    private readonly int? _logFd;
    private readonly SafeFd? _fallback;

    public static string DefaultExecutable => Path.Combine(AppContext.BaseDirectory, "pm-backend");

    /// <summary>
    /// <para>Backends run without the runtime's diagnostics threads (debugger, debug pipe, EventPipe): about 6 ms less per
    /// start and three threads less per backend. An operator who wants to attach dotnet-trace or a debugger to
    /// backends sets DOTNET_EnableDiagnostics in the postmaster's environment, which then wins.</para>
    /// <para>Globalization: pm-backend's runtimeconfig leaves System.Globalization.Invariant unset, so
    /// DOTNET_SYSTEM_GLOBALIZATION_INVARIANT decides it per process: 1 (invariant, no ICU loaded) for every backend
    /// unless its worker has <c>globalization = icu</c>.</para>
    /// </summary>
    private static readonly IReadOnlyDictionary<string, string> s_invariant = BackendEnvironment(invariant: true);

    private static readonly IReadOnlyDictionary<string, string> s_icu = BackendEnvironment(invariant: false);

    private const string DiagnosticsVariable = "DOTNET_EnableDiagnostics";

    private const string InvariantVariable = "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT";

    private static Dictionary<string, string> BackendEnvironment(bool invariant)
    {
        var env = new Dictionary<string, string> { [InvariantVariable] = invariant ? "1" : "0" };
        if (Environment.GetEnvironmentVariable(DiagnosticsVariable) is null)
            env[DiagnosticsVariable] = "0";
        return env;
    }

    /// <summary>The parameter block is written before the spawn, in one write to a fresh pipe: it must fit the smallest
    /// pipe capacity Linux gives (2 pages once a user is over pipe-user-pages-soft), so the write never blocks.</summary>
    public const int MaxParameterBlock = 4096;

    /// <summary>Starts one backend (ICU globalization when <paramref name="icu"/>); returns its pid. Throws
    /// OsCallException when the process cannot be started.</summary>
    private static readonly int[] s_blockedUntilReady = [Signals.SIGHUP, Signals.SIGINT];

    public int Launch(BackendParameters parameters, bool icu = false)
    {
        var (paramRead, paramWrite) = ProcessSpawner.CreatePipe();
        using (paramRead)
        {
            using (paramWrite)
            {
                string block = parameters.Serialize();
                if (block.Length > MaxParameterBlock)
                    throw new Shmem.Errors.ShmemException(
                        $"the backend parameter block is {block.Length} bytes, more than the {MaxParameterBlock} a pipe always holds");
                if (!ProcessSpawner.TryWrite(paramWrite.Fd, block))
                    throw new Shmem.Errors.ShmemException("could not write the backend parameter block to its pipe");
            }
            return ProcessSpawner.Spawn(new SpawnOptions(Executable, Array.Empty<string>(), icu ? s_icu : s_invariant,
                StdinPath: "/dev/null",
                StdoutFd: LogFd,
                // A reload's SIGHUP (default action: terminate) must not end a backend that has not installed its handler
                // yet: blocked at exec, it stays pending until the backend unblocks it (BackendHost.InstallSignals).
                BlockedSignals: s_blockedUntilReady,
                // The parameter pipe first: its number may be the fallback's target, never the other way round (>= 10).
                InheritFds: _fallback is null
                    ? new[] { (paramRead.Fd, BackendParameters.ParameterFd) }
                    : new[] { (paramRead.Fd, BackendParameters.ParameterFd), (_fallback.Fd, BackendParameters.FallbackLogFd) }));
        }
    }
}
