using System.Globalization;
using System.Text;

namespace Postmaster.Shmem.Backends;

/// <summary>
/// What a backend needs to attach to its instance (PostgreSQL's BackendParameters in EXEC_BACKEND mode), passed
/// through an inherited pipe, never on the command line. Offsets, keys and handles only: no address crosses a
/// process boundary. Versioned text, one "name=value" per line, values percent-escaped; unknown names are an error
/// so that a backend of another build refuses instead of guessing.
/// </summary>
public sealed record BackendParameters
{
    public const int CurrentVersion = 2;
    public const int ParameterFd = 3;
    public const int DeathWatchFd = 4;

    public required string DataDir { get; init; }
    public required ulong DataDirDevice { get; init; }
    public required ulong DataDirInode { get; init; }
    public required string SegmentKind { get; init; }   // "sysv" | "posix"
    public required long SegmentKey { get; init; }
    public required long SegmentId { get; init; }
    public required long SegmentSize { get; init; }
    public required uint DsmControlHandle { get; init; }
    public required string DsmType { get; init; }        // "posix" | "sysv" | "mmap"
    public required int Slot { get; init; }
    public required long Generation { get; init; }
    public required int PostmasterPid { get; init; }
    public required string WorkerName { get; init; }
    public required string Entry { get; init; }
    public required string Argument { get; init; }
    public required bool Pooled { get; init; }
    public required string LogDestination { get; init; }   // "stderr" | "json" | "both"
    public required string LogDirectory { get; init; }
    public required string LogLevel { get; init; }

    /// <summary>Pool members only: worker entries to resolve (load, JIT) while parked, so that a request for one of
    /// them does not pay that first-use cost.</summary>
    public IReadOnlyList<string> Preload { get; init; } = [];

    public string Serialize()
    {
        var sb = new StringBuilder();
        void Put(string k, object v) =>
            sb.Append(k).Append('=').Append(Escape(Convert.ToString(v, CultureInfo.InvariantCulture) ?? "")).Append('\n');
        Put("version", CurrentVersion);
        Put("data_dir", DataDir);
        Put("data_dir_device", DataDirDevice);
        Put("data_dir_inode", DataDirInode);
        Put("segment_kind", SegmentKind);
        Put("segment_key", SegmentKey);
        Put("segment_id", SegmentId);
        Put("segment_size", SegmentSize);
        Put("dsm_control_handle", DsmControlHandle);
        Put("dsm_type", DsmType);
        Put("slot", Slot);
        Put("generation", Generation);
        Put("postmaster_pid", PostmasterPid);
        Put("worker_name", WorkerName);
        Put("entry", Entry);
        Put("argument", Argument);
        Put("pooled", Pooled ? 1 : 0);
        Put("log_destination", LogDestination);
        Put("log_directory", LogDirectory);
        Put("log_level", LogLevel);
        Put("preload", string.Join('\n', Preload));
        sb.Append("end=1\n");
        return sb.ToString();
    }

    /// <summary>Values may hold any text: '%', line feeds and carriage returns are written as %25, %0A, %0D.</summary>
    private static string Escape(string v) => v.Replace("%", "%25").Replace("\n", "%0A").Replace("\r", "%0D");

    private static string Unescape(string v) => v.Replace("%0A", "\n").Replace("%0D", "\r").Replace("%25", "%");

    /// <summary>Parses a block; throws FormatException naming the problem (version, missing or unknown field).</summary>
    public static BackendParameters Parse(string text)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = line.IndexOf('=');
            if (eq <= 0)
                throw new FormatException($"malformed backend parameter line \"{line}\"");
            d[line[..eq]] = Unescape(line[(eq + 1)..]);
        }
        if (!d.ContainsKey("end"))
            throw new FormatException("backend parameter block is truncated");
        string Get(string k) => d.Remove(k, out var v) ? v : throw new FormatException($"backend parameter \"{k}\" is missing");
        int version = int.Parse(Get("version"), CultureInfo.InvariantCulture);
        if (version != CurrentVersion)
            throw new FormatException($"backend parameter block has version {version}, this backend understands {CurrentVersion}");
        var p = new BackendParameters
        {
            DataDir = Get("data_dir"),
            DataDirDevice = ulong.Parse(Get("data_dir_device"), CultureInfo.InvariantCulture),
            DataDirInode = ulong.Parse(Get("data_dir_inode"), CultureInfo.InvariantCulture),
            SegmentKind = Get("segment_kind"),
            SegmentKey = long.Parse(Get("segment_key"), CultureInfo.InvariantCulture),
            SegmentId = long.Parse(Get("segment_id"), CultureInfo.InvariantCulture),
            SegmentSize = long.Parse(Get("segment_size"), CultureInfo.InvariantCulture),
            DsmControlHandle = uint.Parse(Get("dsm_control_handle"), CultureInfo.InvariantCulture),
            DsmType = Get("dsm_type"),
            Slot = int.Parse(Get("slot"), CultureInfo.InvariantCulture),
            Generation = long.Parse(Get("generation"), CultureInfo.InvariantCulture),
            PostmasterPid = int.Parse(Get("postmaster_pid"), CultureInfo.InvariantCulture),
            WorkerName = Get("worker_name"),
            Entry = Get("entry"),
            Argument = Get("argument"),
            Pooled = Get("pooled") == "1",
            LogDestination = Get("log_destination"),
            LogDirectory = Get("log_directory"),
            LogLevel = Get("log_level"),
            Preload = Get("preload").Split('\n', StringSplitOptions.RemoveEmptyEntries),
        };
        d.Remove("end");
        if (d.Count > 0)
            throw new FormatException($"unknown backend parameter \"{d.Keys.First()}\"");
        return p;
    }
}
