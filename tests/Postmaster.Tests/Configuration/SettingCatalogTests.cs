using Postmaster.Logging;
using Postmaster.Configuration;
using Xunit;

namespace Postmaster.Tests.Configuration;

public sealed class SettingCatalogTests
{
    public static TheoryData<string, Type> EnumSettings => new()
    {
        { SettingCatalog.SharedMemoryType, typeof(SharedMemoryType) },
        { SettingCatalog.HugePages, typeof(HugePages) },
        { SettingCatalog.DynamicSharedMemoryType, typeof(DynamicSharedMemoryType) },
        { SettingCatalog.LogDestination, typeof(LogDestination) },
        { SettingCatalog.LogMinMessages, typeof(Severity) },
        { SettingCatalog.CrashRecovery, typeof(CrashRecovery) },
        { SettingCatalog.ConnectionSchedulingPolicy, typeof(Shmem.Os.CpuSchedulingPolicy) },
        { WorkerSettingCatalog.Restart, typeof(RestartPolicy) },
        { WorkerSettingCatalog.Globalization, typeof(WorkerGlobalization) },
    };

    private static IEnumerable<SettingDefinition> Everything => SettingCatalog.All.Concat(WorkerSettingCatalog.Attributes);

    [Theory]
    [MemberData(nameof(EnumSettings))]
    public void Enum_members_match_the_allowed_values_in_order(string name, Type enumType)
    {
        SettingDefinition definition = SettingCatalog.TryGet(name, out SettingDefinition? found)
            ? found
            : WorkerSettingCatalog.GetAttribute(name);

        Assert.Equal(
            definition.AllowedValues.Select(value => value.Replace("-", "").Replace("_", "")),
            Enum.GetNames(enumType).Select(member => member.ToLowerInvariant()));
    }

    [Fact]
    public void Every_enum_setting_is_mapped_to_a_CSharp_enum()
    {
        Assert.Equal(
            Everything.Where(definition => definition.Kind == SettingKind.Enum).Count(),
            EnumSettings.Count());
    }

    [Fact]
    public void Names_are_unique_lower_case_and_descriptions_are_single_lines()
    {
        Assert.Equal(Everything.Count(), Everything.Select(definition => definition.Name).Distinct().Count());
        Assert.All(Everything, definition =>
        {
            Assert.Equal(definition.Name.Replace(WorkerSettingCatalog.NamePlaceholder, "name").ToLowerInvariant(),
                definition.Name.Replace(WorkerSettingCatalog.NamePlaceholder, "name"));
            Assert.False(string.IsNullOrWhiteSpace(definition.Description));
            Assert.DoesNotContain('\n', definition.Description);
        });
    }

    [Fact]
    public void Every_default_is_valid_and_within_range()
    {
        Assert.All(Everything.Where(definition => !definition.IsRequired), definition =>
        {
            Assert.True(ValueParser.TryParse(definition, definition.Name, definition.DefaultText!, SettingSource.Default,
                out _, out ConfigError? error), error?.Message);
        });
    }

    [Fact]
    public void Numeric_ranges_are_ordered_and_non_negative()
    {
        Assert.All(Everything.Where(definition => definition.IsNumeric), definition =>
        {
            Assert.InRange(definition.Min, 0, definition.Max);
        });
    }

    [Fact]
    public void Only_the_worker_entry_is_required()
    {
        Assert.Equal(["worker.NAME.entry"], Everything.Where(definition => definition.IsRequired)
            .Select(definition => definition.Name));
    }
}
