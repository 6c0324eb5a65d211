using Postmaster.Cli;
using Postmaster.Shmem.Os;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Cli;

/// <summary>Issue 11 #13: what reaches a command's boundary is printed as one line with strerror text (never a .NET
/// resource key such as "UnauthorizedAccess_IODenied_Path"), and anything unexpected as an internal error.</summary>
[Collection(IntegrationCollection.Name)] // redirects Console.Error: not in parallel with anything
public sealed class CliBoundaryTests
{
    [Fact]
    public void IO_exceptions_are_printed_with_strerror_text()
    {
        var (code, text) = Handle(new UnauthorizedAccessException("UnauthorizedAccess_IODenied_Path"));
        Assert.Equal(1, code);
        Assert.Equal("postmaster: could not access a file: Permission denied\n", text);
        (code, text) = Handle(new FileNotFoundException("IO_FileNotFound_FileName", "/x/y"));
        Assert.Equal("postmaster: could not access file \"/x/y\": No such file or directory\n", text);
        (code, text) = Handle(new IOException("IO_SharingViolation", OsError.ENAMETOOLONG));
        Assert.Equal("postmaster: could not access a file: File name too long\n", text);
    }

    [Fact]
    public void Anything_unexpected_is_an_internal_error_without_a_stack_trace()
    {
        var (code, text) = Handle(new InvalidOperationException("boom"));
        Assert.Equal(1, code);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("postmaster: internal error: InvalidOperationException: boom", lines[0]);
        Assert.StartsWith("HINT:  ", lines[1]);
        Assert.Equal(2, lines.Length);
    }

    [Fact]
    public void Cli_exceptions_keep_their_exit_code_and_never_print_an_empty_detail()
    {
        var (code, text) = Handle(new CliException("bad thing", ExitCodes.Usage, detail: "  ", hint: "do this"));
        Assert.Equal(2, code);
        Assert.Equal("postmaster: bad thing\nHINT:  do this\n", text);
    }

    private static (int Code, string Text) Handle(Exception e)
    {
        var old = Console.Error;
        var sw = new StringWriter { NewLine = "\n" };
        Console.SetError(sw);
        try
        {
            return (CliBoundary.Handle(e), sw.ToString());
        }
        finally
        {
            Console.SetError(old);
        }
    }
}
