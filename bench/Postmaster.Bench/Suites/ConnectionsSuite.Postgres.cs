using System.Globalization;
using System.Text.RegularExpressions;
using Postmaster.Bench.Suites.Backends;

namespace Postmaster.Bench.Suites;

/// <summary>The PostgreSQL anchor for the connection rate, when PostgreSQL is installed: a throw-away cluster (initdb,
/// trust, fsync off) on a free TCP port, and <c>pgbench -n -C</c> with a <c>select 1;</c> script (a new connection per
/// transaction), 1 and 2 clients. PostgreSQL refuses to run as root, so as root its commands run as the
/// <c>postgres</c> user (runuser). Without PostgreSQL the row is left out and the run says so.</summary>
public sealed partial class ConnectionsSuite
{
    private static readonly TimeSpan PgbenchDuration = TimeSpan.FromSeconds(5);

    /// <summary>Connections per second with pgbench -C, by client count; null when PostgreSQL is not installed.</summary>
    private static Dictionary<int, double>? MeasurePostgres(int[] clientCounts)
    {
        string? bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
                .Where(b => File.Exists(Path.Combine(b, "pg_ctl")) && File.Exists(Path.Combine(b, "pgbench"))).Order().LastOrDefault()
            : null;
        if (bin is null)
        {
            Console.WriteLine("(PostgreSQL is not installed: the pgbench row is left out)");
            return null;
        }
        bool root = Postmaster.Shmem.Os.ProcessControl.EffectiveUid == 0;
        string dir = Path.Combine(Path.GetTempPath(), $"pmbench-{Environment.ProcessId}-pg");
        string script = Path.Combine(Path.GetTempPath(), $"pmbench-{Environment.ProcessId}-select1.sql");
        File.WriteAllText(script, "select 1;\n");
        File.SetUnixFileMode(script, (UnixFileMode)0x1A4); // 0644: readable by the postgres user
        int port = FreePort();
        void As(string tool, params string[] args)
        {
            string exe = Path.Combine(bin, tool);
            if (root)
                BenchProcess.Run("/usr/sbin/runuser", null, ["-u", "postgres", "--", exe, .. args]);
            else
                BenchProcess.Run(exe, null, args);
        }
        if (root)
            BenchProcess.Run("/usr/sbin/runuser", null, "-u", "postgres", "--", "/bin/mkdir", "-m", "0700", dir);
        else
            Directory.CreateDirectory(dir);
        bool started = false;
        try
        {
            As("initdb", "-D", dir, "-A", "trust", "-U", "postgres", "--no-sync");
            As("pg_ctl", "-D", dir, "-w", "-l", Path.Combine(dir, "server.log"), "-o",
                $"-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=20", "start");
            started = true;
            var rates = new Dictionary<int, double>();
            foreach (int clients in clientCounts)
            {
                string output = BenchProcess.Output(Path.Combine(bin, "pgbench"), "-n", "-C", "-h", "127.0.0.1",
                    "-p", port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-f", script,
                    "-c", clients.ToString(CultureInfo.InvariantCulture), "-j", clients.ToString(CultureInfo.InvariantCulture),
                    "-T", ((int)PgbenchDuration.TotalSeconds).ToString(CultureInfo.InvariantCulture), "postgres");
                var m = TpsLine().Match(output);
                if (!m.Success)
                    throw new InvalidOperationException($"pgbench printed no tps:\n{output}");
                rates[clients] = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            }
            return rates;
        }
        finally
        {
            if (started)
                As("pg_ctl", "-D", dir, "-m", "immediate", "-w", "stop");
            Directory.Delete(dir, recursive: true);
            File.Delete(script);
        }
    }

    [GeneratedRegex(@"tps = ([0-9.]+)")]
    private static partial Regex TpsLine();
}
