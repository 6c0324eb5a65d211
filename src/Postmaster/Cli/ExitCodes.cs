namespace Postmaster.Cli;

/// <summary>Exit codes of the CLI: pg_ctl's and the LSB init-script convention for status.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int Usage = 2;
    public const int NotRunning = 3;
    public const int NoDataDirectory = 4;
}
