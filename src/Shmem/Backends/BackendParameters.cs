using System.Globalization;
using System.Text;

namespace Postmaster.Shmem.Backends;

/// <summary>
/// What a backend needs to attach to its instance (PostgreSQL's BackendParameters in EXEC_BACKEND mode), passed
/// through an inherited pipe, never on the command line. Offsets, keys and handles only: no address crosses a
/// process boundary. Versioned text, one "name=value" per line, values percent-escaped; unknown names are an error
/// so that a backend of another build refuses instead of guessing.
/// </summary>
internal sealed record BackendParameters
{
    public const int CurrentVersion = 2;
    public const int ParameterFd = 3;

    /// <summary>The postmaster's own stderr in a backend whose stdout and stderr are the log collector's pipe: where the
    /// backend writes text once the collector is gone (the postmaster died).</summary>
    public const int FallbackLogFd = 4;

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
    public required string LogDestination { get; init; }   // "collector" (records over the log pipe) | "stderr" (text)
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
        Put("log_level", LogLevel);
        Put("preload", string.Join('\n', Preload));
        sb.Append("end=1\n");
        return sb.ToString();
    }

    /// <summary>Values may hold any text: '%', line feeds and carriage returns are written as %25, %0A, %0D.</summary>
    private static string Escape(string v) => v.Replace("%", "%25").Replace("\n", "%0A").Replace("\r", "%0D");

    private static string Unescape(string v) =>
        Find(v, '%', 0) >= 0 ? v.Replace("%0A", "\n").Replace("%0D", "\r").Replace("%25", "%") : v;

    /// <summary>string.IndexOf by hand: the vectorised search costs a fresh process about 80 kB of stubs, and these
    /// lines are short.</summary>
    private static int Find(string s, char c, int start)
    {
        for (int i = start; i < s.Length; i++)
            if (s[i] == c)
                return i;
        return -1;
    }

    /// <summary>
    /// Parses a block; throws FormatException naming the problem (version, missing, repeated or unknown field, bad
    /// number). Deliberately plain (no dictionary, no culture-aware number parsing, no vectorised search): it runs
    /// first thing in every backend, and those would cost each idle backend about 0.3 MB of memory.
    /// </summary>
    public static BackendParameters Parse(string text)
    {
        string?[] values = new string?[Fields.Length];
        bool end = false;
        for (int pos = 0; pos < text.Length;)
        {
            int nl = Find(text, '\n', pos);
            if (nl < 0)
                nl = text.Length;
            if (nl > pos)
            {
                string line = text.Substring(pos, nl - pos);
                int eq = Find(line, '=', 0);
                if (eq <= 0)
                    throw new FormatException($"malformed backend parameter line \"{line}\"");
                string key = line.Substring(0, eq);
                if (key == "end")
                    end = true;
                else
                {
                    int field = FieldIndex(key);
                    if (field < 0)
                        throw new FormatException($"unknown backend parameter \"{key}\"");
                    if (values[field] is not null)
                        throw new FormatException($"backend parameter \"{key}\" is repeated");
                    values[field] = Unescape(line.Substring(eq + 1));
                }
            }
            pos = nl + 1;
        }
        if (!end)
            throw new FormatException("backend parameter block is truncated");
        string Get(string k) => values[FieldIndex(k)] ?? throw new FormatException($"backend parameter \"{k}\" is missing");
        ulong Digits(string k, string v, ulong max)
        {
            ulong n = 0;
            foreach (char c in v)
            {
                uint d = (uint)(c - '0');
                if (d > 9 || n > (ulong.MaxValue - d) / 10)
                    throw new FormatException($"backend parameter \"{k}\" is not a number: \"{Get(k)}\"");
                n = n * 10 + d;
            }
            if (v.Length == 0 || n > max)
                throw new FormatException($"backend parameter \"{k}\" is not a number in 0..{max}: \"{Get(k)}\"");
            return n;
        }
        ulong Unsigned(string k, ulong max) => Digits(k, Get(k), max);
        long Number(string k, long max) => (long)Digits(k, Get(k), (ulong)max);
        long Signed(string k) => Get(k) is ['-', .. var magnitude]
            ? -(long)Digits(k, magnitude, long.MaxValue)
            : (long)Digits(k, Get(k), long.MaxValue);
        long version = Number("version", int.MaxValue);
        if (version != CurrentVersion)
            throw new FormatException($"backend parameter block has version {version}, this backend understands {CurrentVersion}");
        return new BackendParameters
        {
            DataDir = Get("data_dir"),
            DataDirDevice = Unsigned("data_dir_device", ulong.MaxValue),
            DataDirInode = Unsigned("data_dir_inode", ulong.MaxValue),
            SegmentKind = Get("segment_kind"),
            SegmentKey = Signed("segment_key"),
            SegmentId = Signed("segment_id"),
            SegmentSize = Number("segment_size", long.MaxValue),
            DsmControlHandle = (uint)Number("dsm_control_handle", uint.MaxValue),
            DsmType = Get("dsm_type"),
            Slot = (int)Number("slot", int.MaxValue),
            Generation = Number("generation", long.MaxValue),
            PostmasterPid = (int)Number("postmaster_pid", int.MaxValue),
            WorkerName = Get("worker_name"),
            Entry = Get("entry"),
            Argument = Get("argument"),
            Pooled = Get("pooled") == "1",
            LogDestination = Get("log_destination"),
            LogLevel = Get("log_level"),
            Preload = Get("preload") is { Length: > 0 } preload ? preload.Split('\n', StringSplitOptions.RemoveEmptyEntries) : [],
        };
    }

    /// <summary>Index of <paramref name="name"/> in <see cref="Fields"/>, or -1. (Not Array.IndexOf: its generic
    /// equality comparer is created by reflection, which an idle backend would otherwise never load.)</summary>
    private static int FieldIndex(string name)
    {
        for (int i = 0; i < Fields.Length; i++)
            if (string.Equals(Fields[i], name))
                return i;
        return -1;
    }

    /// <summary>Every field name but "end", in <see cref="Serialize"/>'s order.</summary>
    private static readonly string[] Fields =
    [
        "version", "data_dir", "data_dir_device", "data_dir_inode", "segment_kind", "segment_key", "segment_id",
        "segment_size", "dsm_control_handle", "dsm_type", "slot", "generation", "postmaster_pid", "worker_name", "entry",
        "argument", "pooled", "log_destination", "log_level", "preload",
    ];
}
