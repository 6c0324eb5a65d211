using Postmaster.Configuration;
using Xunit;

namespace Postmaster.Tests.Configuration;

public sealed class NameSuggesterTests
{
    [Theory]
    [InlineData("abc", "abc", 0)]
    [InlineData("abc", "acb", 1)]
    [InlineData("abc", "ab", 1)]
    [InlineData("abc", "xabc", 1)]
    [InlineData("abc", "abd", 1)]
    [InlineData("", "abc", 3)]
    [InlineData("shared_memroy_type", "shared_memory_type", 1)]
    public void Distance_counts_edits_and_swaps(string a, string b, int distance)
    {
        Assert.Equal(distance, NameSuggester.Distance(a, b));
        Assert.Equal(distance, NameSuggester.Distance(b, a));
    }

    [Fact]
    public void Close_names_are_suggested_and_far_ones_are_not()
    {
        string[] names = ["max_backends", "huge_pages", "log_directory"];

        Assert.Equal("huge_pages", NameSuggester.Suggest("hugepages", names));
        Assert.Equal("log_directory", NameSuggester.Suggest("log_dir_ectroy", names));
        Assert.Null(NameSuggester.Suggest("log", names));
        Assert.Null(NameSuggester.Suggest("completely_different", names));
    }

    [Fact]
    public void Ties_go_to_the_first_name_in_ordinal_order()
    {
        Assert.Equal("abx", NameSuggester.Suggest("abc", ["aby", "abx"]));
    }
}
