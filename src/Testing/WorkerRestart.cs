namespace Postmaster.Testing;

/// <summary><c>worker.NAME.restart</c>: when an exited process of a configured worker is started again.</summary>
public enum WorkerRestart
{
    /// <summary><c>never</c>.</summary>
    Never = 0,

    /// <summary><c>on-failure</c> (the product's default): after a non-zero exit status or a signal.</summary>
    OnFailure = 1,

    /// <summary><c>always</c>: also after exit status 0.</summary>
    Always = 2,
}
