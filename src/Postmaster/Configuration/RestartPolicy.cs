namespace Postmaster.Configuration;

/// <summary>Value of <c>worker.NAME.restart</c>: when an exited worker process is started again.
/// The member order matches the allowed values in <see cref="WorkerSettingCatalog"/>.</summary>
public enum RestartPolicy
{
    /// <summary>Never restart.</summary>
    Never,

    /// <summary>Restart only after a non-zero exit or a signal.</summary>
    OnFailure,

    /// <summary>Restart after every exit.</summary>
    Always,
}
