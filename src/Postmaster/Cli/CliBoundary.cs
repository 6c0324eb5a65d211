using Postmaster.Daemon;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Os;

namespace Postmaster.Cli;

/// <summary>
/// Where every command's failures end: one "postmaster: ..." line (with DETAIL and HINT when there are some) and the
/// exit code, never a stack trace. OS failures are already <see cref="OsCallException"/>s naming the call, the object
/// and errno; a .NET I/O exception that still gets here is printed with strerror text (its own message may be a bare
/// resource key). Anything else is a bug: "internal error", with a request to report it.
/// </summary>
public static class CliBoundary
{
    /// <summary>Prints <paramref name="e"/> and returns the exit code for it.</summary>
    public static int Handle(Exception e)
    {
        switch (e)
        {
            case CliException c:
                Report.Error(c.Message, c.Detail, c.Hint);
                return c.ExitCode;
            case StartupException s:
                Report.Error(s.Message, s.Detail, s.Hint);
                return ExitCodes.Failure;
            case ShmemException s:
                Report.Error(s.Message, s.Detail, s.Hint);
                return ExitCodes.Failure;
            case IOException or UnauthorizedAccessException:
                Report.Error(IoMessage(e));
                return ExitCodes.Failure;
            default:
                InternalError(e);
                return ExitCodes.Failure;
        }
    }

    /// <summary>The last resort: an exception nobody expected.</summary>
    public static void InternalError(Exception e)
    {
        Report.Error($"internal error: {e.GetType().Name}: {e.Message}",
            hint: "This is a bug in postmaster; please report it with the command line that caused it.");
    }

    private static string IoMessage(Exception e)
    {
        string? file = e is FileNotFoundException f ? f.FileName : null;
        return file is null ? $"could not access a file: {OsError.Describe(e)}" : $"could not access file \"{file}\": {OsError.Describe(e)}";
    }
}
