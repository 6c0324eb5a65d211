using Xunit;

namespace Postmaster.Tests.Support;

/// <summary>Tests that start real daemons run one at a time: on 2 cores parallel daemons only add noise.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class IntegrationCollection
{
    public const string Name = "Integration";
}
