//! `cargo xtask bench`: builds the release server and the load generator, runs every
//! benchmark of BENCHMARKS.md against servers on loopback with fresh data directories,
//! prints one table and writes it into BENCHMARKS.md.
//!
//! Options (after `--`): `--duration S` (10), `--warmup S` (2), `--connections N` (16),
//! `--big` (also 10 M seeded users), `--users N` (10 000), `--big-users N` (10 000 000),
//! `--sample N` (ids written for the load generator, 100 000), `--https`, `--no-pin`,
//! `--no-write` (leave BENCHMARKS.md alone), `--only a,b` (scenarios or `rs256`, `seeded`),
//! `--keep` (keep the temporary data directories), `--no-build` (use the binaries already built).
//!
//! With issue-token it also runs the peer (`peer`: node-oidc-provider from npm, installed into
//! `<target>/bench-peer` from `xtask/bench-peer/`, issuing ES256 JWT access tokens through the
//! client-credentials grant) with the same load generator and connections, times one bare
//! ES256 signature (`openssl speed ecdsap256` on the server's CPU), and repeats issue-token
//! over HTTPS (`https-ratio`), and prints those ratios.

use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::root;

const BEGIN: &str = "<!-- bench:begin (written by `cargo xtask bench`; edits inside are lost) -->";
const END: &str = "<!-- bench:end -->";

#[derive(Debug, Clone)]
struct Options {
    duration: f64,
    warmup: f64,
    connections: usize,
    big: bool,
    users: u64,
    big_users: u64,
    sample: u64,
    https: bool,
    pin: bool,
    write: bool,
    only: Option<Vec<String>>,
    keep: bool,
    build: bool,
    database_url: Option<String>,
    /// Another build's `acs-identity`, run through issue-token, revoke and create-user
    /// after this build's server, for a same-run A/B.
    baseline: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            duration: 10.0,
            warmup: 2.0,
            connections: 16,
            big: false,
            users: 10_000,
            big_users: 10_000_000,
            sample: 100_000,
            https: false,
            pin: true,
            write: true,
            only: None,
            keep: false,
            build: true,
            database_url: std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()),
            baseline: None,
        }
    }
}

const USAGE: &str =
    "usage: cargo xtask bench [-- [--duration S] [--warmup S] [--connections N] [--big] \
[--users N] [--big-users N] [--sample N] [--https] [--no-pin] [--no-write] [--only LIST] [--keep] \
[--no-build] [--database-url URL] [--baseline BIN]]";

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options::default();
    let mut it = args.iter().filter(|a| a.as_str() != "--");
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || -> anyhow::Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => {
                    it.next().cloned().with_context(|| format!("{name} needs a value\n{USAGE}"))
                }
            }
        };
        match name {
            "--duration" => o.duration = value()?.parse().context("--duration")?,
            "--warmup" => o.warmup = value()?.parse().context("--warmup")?,
            "--connections" => o.connections = value()?.parse().context("--connections")?,
            "--users" => o.users = value()?.parse().context("--users")?,
            "--big-users" => o.big_users = value()?.parse().context("--big-users")?,
            "--sample" => o.sample = value()?.parse().context("--sample")?,
            "--only" => o.only = Some(value()?.split(',').map(str::to_owned).collect()),
            "--big" => o.big = true,
            "--https" => o.https = true,
            "--no-pin" => o.pin = false,
            "--no-write" => o.write = false,
            "--keep" => o.keep = true,
            "--no-build" => o.build = false,
            "--database-url" => o.database_url = Some(value()?),
            "--baseline" => o.baseline = Some(PathBuf::from(value()?)),
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
    }
    if o.duration < 10.0 {
        eprintln!(
            "xtask bench: note: --duration {} is below the 10 s the benchmarks call for",
            o.duration
        );
    }
    if o.users == 0 || o.big_users == 0 || o.sample == 0 || o.connections == 0 {
        bail!("--users, --big-users, --sample and --connections must be positive");
    }
    Ok(o)
}

impl Options {
    fn wants(&self, what: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.iter().any(|o| o == what))
    }
}

/// The machine, for the record.
#[derive(Debug)]
struct Machine {
    cores: usize,
    cpu: String,
    memory: String,
    kernel: String,
    rustc: String,
}

/// When, at which commit and with which command a benchmark ran.
pub(crate) struct RunRecord {
    pub(crate) date: String,
    pub(crate) commit: String,
    pub(crate) dirty: bool,
    pub(crate) command: String,
}

impl RunRecord {
    /// The start of the run's entry in BENCHMARKS.md: its heading, command and commit.
    pub(crate) fn heading(&self) -> String {
        format!(
            "### Run of {}\n\n- command: `{}`\n- commit: `{}`{}\n",
            self.date,
            self.command,
            self.commit,
            if self.dirty { " with uncommitted changes in the work tree" } else { "" }
        )
    }

    /// The record of `cargo xtask <subcommand> <args>` run now in `root`.
    pub(crate) fn now(root: &Path, subcommand: &str, args: &[String]) -> RunRecord {
        let date = command_output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
            .unwrap_or_default();
        let commit = command_output(
            Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(root),
        )
        .unwrap_or_else(|| "unknown".to_owned());
        let dirty = command_output(
            Command::new("git")
                .args(["--no-optional-locks", "status", "--porcelain", "--untracked-files=no"])
                .current_dir(root),
        )
        .is_some_and(|s| !s.is_empty());
        let mut command = String::new();
        if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
            command.push_str(&format!("CARGO_TARGET_DIR={dir} "));
        }
        command.push_str(&format!("cargo xtask {subcommand}"));
        let passed: Vec<&String> = args.iter().filter(|a| a.as_str() != "--").collect();
        if !passed.is_empty() {
            command.push_str(" --");
            for a in passed {
                command.push(' ');
                command.push_str(a);
            }
        }
        RunRecord { date, commit, dirty, command }
    }
}

pub(crate) fn command_output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Machine {
    fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim())
            })
            .unwrap_or("unknown")
            .to_owned();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or_else(
                || "unknown".to_owned(),
                |kib| format!("{:.0} GiB", kib as f64 / 1048576.0),
            );
        Machine {
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu,
            memory,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned()),
            rustc: command_output(Command::new("rustc").arg("--version")).unwrap_or_default(),
        }
    }
}

/// Whether a load average line (`1 5 15` minutes) says other work was running.
pub(crate) fn busy(load_average: &str) -> bool {
    load_average
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .is_some_and(|l| l > 1.0)
}

/// Puts `out` between the markers `begin` and `end` in BENCHMARKS.md, or appends it under
/// `## heading` when the markers are missing.
pub(crate) fn write_block(
    root: &Path,
    begin: &str,
    end: &str,
    heading: &str,
    out: &str,
) -> anyhow::Result<()> {
    let path = root.join("BENCHMARKS.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, with_block(&current, begin, end, heading, out))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `doc` with the block between `begin` and `end` replaced by `out` (or added under `heading`).
/// The run it replaces moves to just after the line `<!-- NAME:earlier -->` (`end` with
/// `:earlier` for `:end`) when the document has one, so no recorded run is lost.
fn with_block(doc: &str, begin: &str, end: &str, heading: &str, out: &str) -> String {
    let block = format!("{begin}\n{out}{end}");
    let (Some(b), Some(e)) = (doc.find(begin), doc.find(end)) else {
        return format!("{doc}\n## {heading}\n\n{block}\n");
    };
    if b > e {
        return format!("{doc}\n## {heading}\n\n{block}\n");
    }
    let previous = doc[b + begin.len()..e].trim();
    let mut updated = format!("{}{block}{}", &doc[..b], &doc[e + end.len()..]);
    let earlier = format!("{}\n", end.replace(":end", ":earlier"));
    if let Some(at) = updated.find(&earlier).filter(|_| !previous.is_empty()) {
        updated.insert_str(at + earlier.len(), &format!("\n{previous}\n"));
    }
    updated
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Which CPU the server and the load generator (or client) run on.
#[derive(Debug, Clone)]
pub(crate) struct Pinning {
    pub(crate) server: Option<String>,
    pub(crate) loadgen: Option<String>,
}

impl Pinning {
    /// CPU 1 for the server and 0 for the load, when `wanted` and there are two cores and
    /// `taskset`; else none.
    pub(crate) fn detect(wanted: bool, cores: usize) -> Pinning {
        let has_taskset = Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if wanted && cores >= 2 && has_taskset {
            Pinning { server: Some("1".to_owned()), loadgen: Some("0".to_owned()) }
        } else {
            Pinning { server: None, loadgen: None }
        }
    }

    fn describe(&self) -> String {
        match (&self.server, &self.loadgen) {
            (Some(s), Some(l)) => format!(
                "server pinned to CPU {s}, load generator to CPU {l} (`taskset -c`): the server has one core"
            ),
            _ => "not pinned (fewer than two cores, no `taskset`, or `--no-pin`)".to_owned(),
        }
    }
}

/// `program` on CPU `cpu` (`taskset -c`), or where the scheduler puts it.
pub(crate) fn pinned(cpu: Option<&str>, program: &Path) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// `bin serve` on `data_dir` (on CPU `cpu`), HTTPS and plain HTTP on free ports of
/// 127.0.0.1, its log to `log`, its standard output piped for [`read_banner`].
pub(crate) fn serve_command(
    bin: &Path,
    data_dir: &Path,
    cpu: Option<&str>,
    log: std::fs::File,
) -> Command {
    let mut cmd = pinned(cpu, bin);
    cmd.arg("serve").arg("--data-dir").arg(data_dir);
    cmd.args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"]);
    // stdout is a pipe: ask for the connection string the banner is read for (builds from
    // before the flag, such as a `--baseline`, always print it).
    let help = Command::new(bin).args(["serve", "--help"]).output();
    let flag = "--print-connection-string";
    if help.is_ok_and(|h| String::from_utf8_lossy(&h.stdout).contains(flag)) {
        cmd.arg(flag);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log));
    cmd
}

/// Reads the banner of a server just started with its standard output piped: hands each
/// line, trimmed, to `take` until `take` says the banner is complete, and keeps draining the
/// output on a thread afterwards so the server never blocks on it. Kills the server when the
/// banner is not complete within `timeout` (its log is `log`).
pub(crate) fn read_banner(
    child: &mut Child,
    timeout: Duration,
    log: &Path,
    mut take: impl FnMut(&str) -> bool,
) -> anyhow::Result<()> {
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the server did not print its banner; see {}", log.display());
        };
        if take(line.trim()) {
            return Ok(());
        }
    }
}

/// The scenarios `--baseline` repeats with another build.
const BASELINE_SCENARIOS: [&str; 3] = ["issue-token", "revoke", "create-user"];

/// A running `acs-identity serve`.
// No `Debug`: it holds the connection string.
struct Server {
    child: Child,
    pid: u32,
    http: String,
    https: String,
    connection_string: String,
    resource: String,
    data_dir: PathBuf,
    started_in: Duration,
}

impl Server {
    fn start(
        bin: &Path,
        data_dir: &Path,
        extra: &[&str],
        cpu: Option<&str>,
        log: &Path,
    ) -> anyhow::Result<Server> {
        std::fs::create_dir_all(data_dir)?;
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let mut cmd = serve_command(bin, data_dir, cpu, log_file);
        cmd.args(extra);
        let t0 = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("cannot start {cmd:?}"))?;
        let pid = child.id();
        let (mut http, mut https, mut cs, mut resource) = (None, None, None, None);
        read_banner(&mut child, Duration::from_secs(600), log, |line| {
            if let Some(v) = line.strip_prefix("acs-identity is serving at ") {
                https = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("plain HTTP at ") {
                http = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("resource id:") {
                resource = Some(v.trim().to_owned());
            } else if line.starts_with("endpoint=") && line.contains(";accesskey=") {
                cs = Some(line.to_owned());
            }
            http.is_some() && https.is_some() && cs.is_some() && resource.is_some()
        })?;
        let started_in = t0.elapsed();
        Ok(Server {
            child,
            pid,
            http: http.unwrap_or_default(),
            https: https.unwrap_or_default(),
            connection_string: cs.unwrap_or_default(),
            resource: resource.unwrap_or_default(),
            data_dir: data_dir.to_owned(),
            started_in,
        })
    }

    /// Peak resident set size (VmHWM) so far, in bytes.
    fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let kib = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
        kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok().map(|k| k * 1024)
    }

    /// SIGTERM, then waits for a graceful exit (SIGKILL after 60 s).
    fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the server exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the server did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The temporary directory of one run, removed at the end unless `--keep`.
#[derive(Debug)]
struct Scratch {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("xtask bench: kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The sum of two load generators' reports run at the same time: rates and CPU add up,
/// latencies are the worse of the two; each one's "other" counts the other side's server and
/// load generator, so those are taken out (averaged over both views).
fn merge_two(a: &Value, b: &Value) -> Value {
    let sum = |path: &[&str]| f(a, path) + f(b, path);
    let max = |path: &[&str]| f(a, path).max(f(b, path));
    let count = |k: &str| a[k].as_u64().unwrap_or(0) + b[k].as_u64().unwrap_or(0);
    let own = |v: &Value| f(v, &["server_cpu_cores"]) + f(v, &["loadgen_cpu_cores"]);
    let other = (f(a, &["other_cpu_cores"]) - own(b) + f(b, &["other_cpu_cores"]) - own(a)) / 2.0;
    serde_json::json!({
        "rps": sum(&["rps"]),
        "latency_ms": {
            "p50": max(&["latency_ms", "p50"]),
            "p99": max(&["latency_ms", "p99"]),
            "p99_9": max(&["latency_ms", "p99_9"]),
        },
        "non_2xx": count("non_2xx"),
        "errors": count("errors"),
        "server_cpu_cores": sum(&["server_cpu_cores"]),
        "loadgen_cpu_cores": sum(&["loadgen_cpu_cores"]),
        "other_cpu_cores": other.max(0.0),
    })
}

/// CPU time (user + system, seconds) used so far by every process named `postgres`.
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    let ticks: u64 = entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| {
            let (head, rest) = stat.rsplit_once(')')?;
            if !head.ends_with("(postgres") {
                return None;
            }
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum();
    // USER_HZ is 100 on Linux.
    ticks as f64 / 100.0
}

/// WAL bytes the PostgreSQL server has written so far (`pg_stat_wal`), or NaN.
fn wal_bytes(url: &str) -> f64 {
    command_output(Command::new("psql").args([
        "-tA",
        "-d",
        url,
        "-c",
        "SELECT wal_bytes FROM pg_stat_wal",
    ]))
    .and_then(|s| s.trim().parse().ok())
    .unwrap_or(f64::NAN)
}

/// A fresh PostgreSQL database for one run, dropped at the end.
struct BenchDatabase {
    admin: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    fn create(admin: &str) -> anyhow::Result<BenchDatabase> {
        let name = format!("acsid_bench_{}", std::process::id());
        let (base, _) = admin.rsplit_once('/').context("--database-url has no database name")?;
        psql(admin, &format!("DROP DATABASE IF EXISTS {name}"))?;
        psql(admin, &format!("CREATE DATABASE {name}"))?;
        Ok(BenchDatabase { admin: admin.to_owned(), url: format!("{base}/{name}"), name })
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let _ = psql(&self.admin, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let status = Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .env("PGOPTIONS", "--client-min-messages=warning")
        .stdout(Stdio::null())
        .status()
        .context("cannot run psql (PostgreSQL's client) for the PostgreSQL benchmark")?;
    if !status.success() {
        bail!("psql failed on {sql:?}");
    }
    Ok(())
}

/// splitmix64, for the random bits of seeded ids.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `i`-th seeded UUID v7 (RFC 9562, method 1: `rand_a` is a counter, so ids are
/// strictly increasing): 4 096 ids per millisecond starting at `base_ms`.
fn seeded_uuid(base_ms: u64, i: u64, random: u64) -> [u8; 16] {
    let ms = base_ms + i / 4096;
    let counter = (i % 4096) as u16;
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70 | (counter >> 8) as u8;
    b[7] = counter as u8;
    b[8..].copy_from_slice(&random.to_be_bytes());
    b[8] = 0x80 | (b[8] & 0x3f);
    b
}

fn hyphenated(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Inserts `count` users into the stopped server's database in one transaction with the
/// `sqlite3` shell, and writes every `count / sample`-th raw id to `sample_file`.
fn seed(
    db: &Path,
    resource: &str,
    count: u64,
    sample: u64,
    sample_file: &Path,
) -> anyhow::Result<Duration> {
    if Command::new("sqlite3").arg("--version").stdout(Stdio::null()).status().is_err() {
        bail!("seeding needs the sqlite3 shell: apt-get install -y sqlite3");
    }
    let t0 = Instant::now();
    let mut child = Command::new("sqlite3")
        .arg("-bail")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start sqlite3")?;
    let stdin = child.stdin.take().context("no stdin")?;
    let mut sql = BufWriter::with_capacity(1 << 20, stdin);
    let mut ids = BufWriter::new(std::fs::File::create(sample_file)?);
    #[allow(clippy::disallowed_methods)] // the time a benchmark run is recorded at
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let span_ms = count / 4096 + 1;
    let base_ms = (now.as_millis() as u64).saturating_sub(span_ms + 60_000);
    let mut rng = now.as_nanos() as u64;
    let stride = (count / sample).max(1);
    // The server switches the journal back to WAL when it opens the database.
    writeln!(
        sql,
        "PRAGMA journal_mode=DELETE;\nPRAGMA synchronous=OFF;\nPRAGMA cache_size=-262144;\nBEGIN;"
    )?;
    const BATCH: u64 = 500;
    let mut i = 0;
    while i < count {
        sql.write_all(b"INSERT INTO identities(user_id,created_at,generation) VALUES")?;
        let end = (i + BATCH).min(count);
        for j in i..end {
            let id = seeded_uuid(base_ms, j, splitmix(&mut rng));
            let created = (base_ms + j / 4096) * 1_000_000;
            let sep = if j == i { "" } else { "," };
            write!(sql, "{sep}(X'")?;
            for x in id {
                write!(sql, "{x:02x}")?;
            }
            write!(sql, "',{created},0)")?;
            if j % stride == 0 {
                writeln!(ids, "8:acs:{resource}_{}", hyphenated(&id))?;
            }
        }
        sql.write_all(b";\n")?;
        i = end;
    }
    writeln!(sql, "COMMIT;")?;
    sql.flush()?;
    drop(sql);
    ids.flush()?;
    let status = child.wait()?;
    if !status.success() {
        bail!("sqlite3 failed while seeding {}: {status}", db.display());
    }
    Ok(t0.elapsed())
}

/// One row of the table.
#[derive(Debug)]
struct Row {
    name: String,
    store: String,
    result: Option<Value>,
    rss: Option<u64>,
    target: String,
    met: Option<bool>,
    met_note: String,
}

fn f(v: &Value, path: &[&str]) -> f64 {
    path.iter().fold(v, |v, k| &v[*k]).as_f64().unwrap_or(f64::NAN)
}

struct Bench {
    opts: Options,
    loadgen: PathBuf,
    server: PathBuf,
    pin: Pinning,
    scratch: PathBuf,
}

impl Bench {
    fn start(&self, name: &str, extra: &[&str]) -> anyhow::Result<Server> {
        let dir = self.scratch.join(name);
        let server = Server::start(
            &self.server,
            &dir,
            extra,
            self.pin.server.as_deref(),
            &self.scratch.join(format!("{name}.log")),
        )?;
        eprintln!(
            "xtask bench: server {name} (pid {}) at {} and {}",
            server.pid, server.http, server.https
        );
        Ok(server)
    }

    fn load(
        &self,
        server: &Server,
        scenario: &str,
        users_file: Option<&Path>,
    ) -> anyhow::Result<Value> {
        let child = self.spawn_load(server, scenario, users_file, self.opts.connections)?;
        self.finish_load(child, scenario)
    }

    /// The same-run A/B: `bin` (another build) on a fresh server through the scenarios of
    /// `this_build`, in the same order, each row giving this build ÷ that one.
    fn baseline(
        &self,
        bin: &Path,
        this_build: &[(&str, f64)],
        rows: &mut Vec<Row>,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let mut other = self.clone_paths();
        other.server = bin.to_owned();
        let server = other.start("baseline", &[])?;
        for (scenario, this_rps) in this_build {
            let v = other.load(&server, scenario, None)?;
            let ratio = this_rps / f(&v, &["rps"]);
            rows.push(row(
                &format!("{scenario}, baseline build"),
                "1 k users (API)",
                Some(v),
                None,
                "this build ÷ baseline ≥ 0.95",
                Some((ratio >= 0.95, format!("{ratio:.2}"))),
            ));
        }
        server.stop()?;
        notes.push(format!(
            "Baseline build (`--baseline`): `{}`, run on a fresh server after this build's \
             ES256 server, through the same scenarios in the same order.",
            bin.display()
        ));
        Ok(())
    }

    /// issue-token over HTTPS (keep-alive), whatever `--https` says.
    fn load_https(&self, server: &Server) -> anyhow::Result<Value> {
        let mut https = self.clone_paths();
        https.opts.https = true;
        let child = https.spawn_load(server, "issue-token", None, self.opts.connections)?;
        self.finish_load(child, "issue-token over HTTPS")
    }

    fn clone_paths(&self) -> Bench {
        Bench {
            opts: self.opts.clone(),
            loadgen: self.loadgen.clone(),
            server: self.server.clone(),
            pin: self.pin.clone(),
            scratch: self.scratch.clone(),
        }
    }

    /// node-oidc-provider under the same load: the client-credentials grant, ES256 JWT
    /// access tokens. `connection_string` only satisfies the load generator's arguments.
    fn peer(&self, target_dir: &Path, connection_string: &str) -> anyhow::Result<Value> {
        let dir = target_dir.join("bench-peer");
        std::fs::create_dir_all(&dir)?;
        let source = root().join("xtask/bench-peer");
        let mut changed = !dir.join("node_modules/oidc-provider").exists();
        for file in ["package.json", "provider.mjs"] {
            let want = std::fs::read(source.join(file))?;
            if std::fs::read(dir.join(file)).ok().as_deref() != Some(want.as_slice()) {
                std::fs::write(dir.join(file), want)?;
                changed = true;
            }
        }
        if changed {
            crate::run(
                Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--omit=dev"])
                    .current_dir(&dir),
            )?;
        }
        let node = PathBuf::from("node");
        let mut cmd = pinned(self.pin.server.as_deref(), &node);
        let mut child = cmd
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("NODE_ENV", "production")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run node")?;
        let stdout = child.stdout.take().context("node's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("listening ") {
                        break url.trim().to_owned();
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("node-oidc-provider did not start");
                }
            }
        };
        let pid = child.id();
        eprintln!("xtask bench: node-oidc-provider (pid {pid}) at {url}");
        let load = pinned(self.pin.loadgen.as_deref(), &self.loadgen)
            .args(["--endpoint", &url])
            .args(["--scenario", "oidc-client-credentials", "--oidc-client", "bench:bench-secret"])
            .args(["--connections", &self.opts.connections.to_string()])
            .args(["--duration", &self.opts.duration.to_string()])
            .args(["--warmup", &self.opts.warmup.to_string()])
            .args(["--server-pid", &pid.to_string()])
            .arg("--json")
            .env("ACSID_LOADGEN_CONNECTION_STRING", connection_string)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot run the load generator")?;
        let result = self.finish_load(load, "node-oidc-provider client-credentials");
        let _ = child.kill();
        let _ = child.wait();
        result
    }

    /// Microseconds of one bare ES256 (ECDSA P-256) signature on the server's CPU:
    /// `openssl speed -seconds 3 ecdsap256`.
    fn es256_sign_us(&self) -> anyhow::Result<f64> {
        let openssl = PathBuf::from("openssl");
        let out = pinned(self.pin.server.as_deref(), &openssl)
            .args(["speed", "-seconds", "3", "ecdsap256"])
            .stderr(Stdio::null())
            .output()
            .context("cannot run openssl speed")?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "256 bits ecdsa (nistp256)   0.0000s   0.0001s  32700.0  10000.0": sign/s, verify/s.
        let line = text
            .lines()
            .find(|l| l.contains("ecdsa (nistp256)"))
            .context("openssl speed printed no nistp256 line")?;
        let numbers: Vec<f64> =
            line.split_whitespace().filter_map(|w| w.parse::<f64>().ok()).collect();
        let signs = numbers.get(numbers.len().wrapping_sub(2)).copied().unwrap_or(0.0);
        if signs <= 0.0 {
            bail!("cannot read openssl speed: {line}");
        }
        Ok(1e6 / signs)
    }

    /// Starts the load generator on `server` with `connections` connections.
    fn spawn_load(
        &self,
        server: &Server,
        scenario: &str,
        users_file: Option<&Path>,
        connections: usize,
    ) -> anyhow::Result<Child> {
        let mut cmd = pinned(self.pin.loadgen.as_deref(), &self.loadgen);
        let endpoint = if self.opts.https { &server.https } else { &server.http };
        cmd.arg("--endpoint")
            .arg(endpoint)
            .args(["--scenario", scenario])
            .args(["--connections", &connections.to_string()])
            .args(["--duration", &self.opts.duration.to_string()])
            .args(["--warmup", &self.opts.warmup.to_string()])
            .args(["--server-pid", &server.pid.to_string()])
            .arg("--json")
            .env("ACSID_LOADGEN_CONNECTION_STRING", &server.connection_string)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if self.opts.https {
            cmd.arg("--ca-file").arg(server.data_dir.join("tls/ca.pem"));
        }
        if let Some(file) = users_file {
            cmd.arg("--users-file").arg(file);
        }
        cmd.spawn().with_context(|| format!("cannot run {cmd:?}"))
    }

    /// Waits for a load generator and reads its JSON report.
    fn finish_load(&self, child: Child, scenario: &str) -> anyhow::Result<Value> {
        let out = child.wait_with_output().context("wait for the load generator")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let value: Option<Value> = serde_json::from_str(text.trim()).ok();
        if !out.status.success() {
            bail!(
                "the load generator failed on {scenario} ({}); its report: {}",
                out.status,
                value.map_or_else(|| text.into_owned(), |v| v.to_string())
            );
        }
        let value = value.context("the load generator printed no JSON report")?;
        eprintln!(
            "xtask bench: {scenario}: {:.0}/s, p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, CPU cores: server {:.2}, loadgen {:.2}, other {:.2}",
            f(&value, &["rps"]),
            f(&value, &["latency_ms", "p50"]),
            f(&value, &["latency_ms", "p99"]),
            f(&value, &["latency_ms", "p99_9"]),
            f(&value, &["server_cpu_cores"]),
            f(&value, &["loadgen_cpu_cores"]),
            f(&value, &["other_cpu_cores"]),
        );
        Ok(value)
    }

    /// Issue-token and create-user on PostgreSQL: one node with all connections, then two
    /// nodes on the same database with half each (two load generators at once).
    fn postgres(
        &self,
        url: &str,
        rows: &mut Vec<Row>,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let db = BenchDatabase::create(url)?;
        let flags = ["--database-url", db.url.as_str()];
        let a = self.start("pg-a", &flags)?;
        let b = self.start("pg-b", &flags)?;
        let key =
            |s: &Server| s.connection_string.split_once(";accesskey=").map(|p| p.1.to_owned());
        if key(&a) != key(&b) {
            bail!("the two nodes on one database print different access keys");
        }
        for scenario in ["issue-token", "create-user"] {
            let (pg_before, wal_before) = (postgres_cpu_seconds(), wal_bytes(&db.url));
            let one = self.load(&a, scenario, None)?;
            let pg_one = postgres_cpu_seconds() - pg_before;
            let wal_one = wal_bytes(&db.url) - wal_before;
            let half = self.opts.connections.div_ceil(2);
            let pg_before = postgres_cpu_seconds();
            let (la, lb) = (
                self.spawn_load(&a, scenario, None, half)?,
                self.spawn_load(&b, scenario, None, half)?,
            );
            let (va, vb) = (self.finish_load(la, scenario)?, self.finish_load(lb, scenario)?);
            let pg_two = postgres_cpu_seconds() - pg_before;
            let two = merge_two(&va, &vb);
            let ratio = f(&two, &["rps"]) / f(&one, &["rps"]);
            // Per request: the nodes' CPU over the measured window, and PostgreSQL's over the
            // whole load run (warm-up and the load generator's setup included, so a little high).
            let node_us = |v: &Value| 1e6 * f(v, &["server_cpu_cores"]) / f(v, &["rps"]);
            let requests = |v: &Value| f(v, &["rps"]) * (self.opts.duration + self.opts.warmup);
            notes.push(format!(
                "PostgreSQL {scenario}: CPU per request on the nodes {:.0} µs (1 node) / {:.0} µs (2 nodes), in PostgreSQL about {:.0} µs / {:.0} µs (all `postgres` processes, whole run); WAL about {:.0} bytes per request (1 node); 2 nodes ÷ 1 node = {ratio:.2}",
                node_us(&one),
                node_us(&two),
                1e6 * pg_one / requests(&one),
                1e6 * pg_two / requests(&two),
                wal_one / requests(&one),
            ));
            let name = if scenario == "issue-token" { "issue-token ES256" } else { scenario };
            rows.push(row(name, "PostgreSQL, 1 node", Some(one), None, "–", None));
            rows.push(row(name, "PostgreSQL, 2 nodes (sum)", Some(two), None, "–", None));
            if let Some(r) = rows.last_mut() {
                r.met_note = format!("÷ 1 node = {ratio:.2}");
            }
        }
        a.stop()?;
        b.stop()?;
        drop(db);
        Ok(())
    }

    /// Starts a fresh server, seeds `count` users into its database, restarts it, runs
    /// issue-token against a sample of them and records the server's peak RSS.
    fn seeded(&self, name: &str, count: u64) -> anyhow::Result<(Value, Option<u64>, String)> {
        let server = self.start(name, &[])?;
        let (resource, dir) = (server.resource.clone(), server.data_dir.clone());
        server.stop()?;
        let sample_file = self.scratch.join(format!("{name}-users.txt"));
        eprintln!(
            "xtask bench: seeding {count} users into {}",
            dir.join("acs-identity.db").display()
        );
        let took =
            seed(&dir.join("acs-identity.db"), &resource, count, self.opts.sample, &sample_file)?;
        eprintln!("xtask bench: seeded {count} users in {:.1} s", took.as_secs_f64());
        let server = self.start(name, &[])?;
        let note = format!(
            "{} users seeded in {:.1} s; server restarted in {:.2} s",
            human(count),
            took.as_secs_f64(),
            server.started_in.as_secs_f64()
        );
        let value = self.load(&server, "issue-token", Some(&sample_file))?;
        let rss = server.peak_rss();
        server.stop()?;
        Ok((value, rss, note))
    }
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{} M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{} k", n / 1_000),
        n => n.to_string(),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / 1048576.0)
}

fn row(
    name: &str,
    store: &str,
    result: Option<Value>,
    rss: Option<u64>,
    target: &str,
    check: Option<(bool, String)>,
) -> Row {
    let (met, met_note) = match check {
        Some((met, note)) => (Some(met), note),
        None => (None, String::new()),
    };
    Row {
        name: name.to_owned(),
        store: store.to_owned(),
        result,
        rss,
        target: target.to_owned(),
        met,
        met_note,
    }
}

fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| benchmark | store | req/s | p50 ms | p99 ms | p99.9 ms | non-2xx | CPU cores: server / loadgen / other | server peak RSS | target | met? |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|---|---|\n",
    );
    for r in rows {
        let cells = match &r.result {
            Some(v) => format!(
                "{:.0} | {:.2} | {:.2} | {:.2} | {} | {:.2} / {:.2} / {:.2}",
                f(v, &["rps"]),
                f(v, &["latency_ms", "p50"]),
                f(v, &["latency_ms", "p99"]),
                f(v, &["latency_ms", "p99_9"]),
                v["non_2xx"].as_u64().unwrap_or(0) + v["errors"].as_u64().unwrap_or(0),
                f(v, &["server_cpu_cores"]),
                f(v, &["loadgen_cpu_cores"]),
                f(v, &["other_cpu_cores"]),
            ),
            None => "– | – | – | – | – | –".to_owned(),
        };
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let mut notes: Vec<String> = Vec::new();
        if !r.met_note.is_empty() {
            notes.push(r.met_note.clone());
        }
        // On PostgreSQL "other" is mostly the database itself, not competing work.
        let database_in_other = r.store.starts_with("PostgreSQL");
        if let Some(other) = r.result.as_ref().map(|v| f(v, &["other_cpu_cores"])) {
            if other > 0.5 && !database_in_other {
                notes.push(format!("busy machine: other work used {other:.1} cores"));
            }
        }
        let met =
            if notes.is_empty() { met.to_owned() } else { format!("{met} ({})", notes.join("; ")) };
        t.push_str(&format!(
            "| {} | {} | {cells} | {} | {} | {met} |\n",
            r.name,
            r.store,
            r.rss.map_or_else(|| "–".to_owned(), mib),
            r.target,
        ));
    }
    t
}

/// `cargo xtask bench [-- options]`.
pub(crate) fn bench(args: &[String]) -> anyhow::Result<()> {
    let opts = parse_options(args)?;
    let root = root();
    let target_dir = crate::target_dir(&root);
    if opts.build {
        crate::build_release(&root, &["-p", "acs_identity_cli", "-p", "acs_identity_loadgen"])?;
    }
    let machine = Machine::detect();
    let pin = Pinning::detect(opts.pin, machine.cores);
    let load_before = load_average();
    let scratch = Scratch {
        dir: std::env::temp_dir().join(format!("acs-identity-bench-{}", std::process::id())),
        keep: opts.keep,
    };
    std::fs::create_dir_all(&scratch.dir)?;
    let bench = Bench {
        opts: opts.clone(),
        loadgen: target_dir.join("release/acs-identity-loadgen"),
        server: target_dir.join("release/acs-identity"),
        pin,
        scratch: scratch.dir.clone(),
    };
    eprintln!("xtask bench: {}; load average before: {load_before}", bench.pin.describe());

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut issue: Option<Value> = None;
    let mut https_issue: Option<Value> = None;
    let mut peer_connection_string = String::new();
    // This build's figures for the scenarios a `--baseline` build repeats.
    let mut this_build: Vec<(&str, f64)> = Vec::new();
    let rps = |v: &Value| f(v, &["rps"]);
    let p99 = |v: &Value| f(v, &["latency_ms", "p99"]);

    // ES256 (the default algorithm): every API benchmark against one fresh server.
    let es_scenarios =
        ["issue-token", "validate", "revoke", "create-user", "create-user-and-token"];
    if es_scenarios.iter().any(|s| opts.wants(s)) {
        let server = bench.start("es256", &[])?;
        for s in es_scenarios.iter().filter(|s| opts.wants(s)) {
            let v = bench.load(&server, s, None)?;
            let r = rps(&v);
            if BASELINE_SCENARIOS.contains(s) {
                this_build.push((s, r));
            }
            if *s == "issue-token" {
                issue = Some(v.clone());
                if opts.wants("https-ratio") && !opts.https {
                    let h = bench.load_https(&server)?;
                    https_issue = Some(h);
                }
            }
            let (name, store, target, check) = match *s {
                "issue-token" => (
                    "issue-token ES256",
                    "1 k users (API)",
                    "≥ 30 000/s, p99 ≤ 5 ms",
                    Some((r >= 30_000.0 && p99(&v) <= 5.0, String::new())),
                ),
                "validate" => (
                    "validate (ES256 token)",
                    "1 k users (API)",
                    "≥ 25 000/s",
                    Some((r >= 25_000.0, String::new())),
                ),
                "revoke" => (
                    "revoke, durable",
                    "1 k users (API)",
                    "≥ 15 000/s",
                    Some((r >= 15_000.0, String::new())),
                ),
                "create-user" => (
                    "create-user, durable",
                    "growing",
                    "≥ 20 000/s",
                    Some((r >= 20_000.0, String::new())),
                ),
                _ => ("create-user-and-token ES256", "growing", "–", None),
            };
            rows.push(row(name, store, Some(v), None, target, check));
        }
        if let Some(rss) = server.peak_rss() {
            notes.push(format!(
                "Peak RSS of the ES256 server after all its benchmarks: {}.",
                mib(rss)
            ));
        }
        peer_connection_string = server.connection_string.clone();
        server.stop()?;
    }
    if let Some(issue) = &issue {
        let issue_rps = rps(issue);
        if let Some(h) = https_issue {
            let ratio = rps(&h) / issue_rps;
            rows.push(row(
                "issue-token ES256 over HTTPS",
                "1 k users (API)",
                Some(h),
                None,
                "HTTPS ÷ HTTP ≥ 0.8",
                Some((ratio >= 0.8, format!("{ratio:.2}"))),
            ));
        }
        if opts.wants("peer") {
            let v = bench.peer(&target_dir, &peer_connection_string)?;
            let ratio = issue_rps / rps(&v);
            rows.push(row(
                "node-oidc-provider: client credentials, ES256 JWT",
                "in memory",
                Some(v),
                None,
                "issue-token ÷ this ≥ 8",
                Some((ratio >= 8.0, format!("{ratio:.1}×"))),
            ));
        }
        if opts.wants("es256-sign") {
            let sign_us = bench.es256_sign_us()?;
            let cpu_us = f(issue, &["server_cpu_cores"]) * 1e6 / issue_rps;
            let ratio = cpu_us / sign_us;
            notes.push(format!(
                "Server CPU per issued token: {cpu_us:.1} µs; one bare ES256 signature \
                 (`openssl speed ecdsap256`, on the server's CPU): {sign_us:.1} µs; ratio {ratio:.2}."
            ));
            rows.push(row(
                "server CPU per token ÷ one ES256 signature",
                "–",
                None,
                None,
                "≤ 2",
                Some((ratio <= 2.0, format!("{cpu_us:.0} µs ÷ {sign_us:.0} µs = {ratio:.2}"))),
            ));
        }
    }

    if let Some(baseline) = &opts.baseline {
        bench.baseline(baseline, &this_build, &mut rows, &mut notes)?;
    }

    if opts.wants("rs256") {
        let server = bench.start("rs256", &["--signing-alg", "RS256"])?;
        let v = bench.load(&server, "issue-token", None)?;
        let r = rps(&v);
        rows.push(row(
            "issue-token RS256",
            "1 k users (API)",
            Some(v),
            server.peak_rss(),
            "≥ 3 500/s",
            Some((r >= 3_500.0, String::new())),
        ));
        server.stop()?;
    }

    let mut small: Option<f64> = None;
    if opts.wants("seeded") {
        let (v, rss, note) = bench.seeded("seeded-small", opts.users)?;
        small = Some(rps(&v));
        notes.push(note);
        rows.push(row(
            "issue-token ES256",
            &format!("{} users (seeded)", human(opts.users)),
            Some(v),
            rss,
            "basis of the ratio",
            None,
        ));
    }
    let big_store = format!("{} users (seeded)", human(opts.big_users));
    if opts.big && opts.wants("seeded") {
        let (v, rss, note) = bench.seeded("seeded-big", opts.big_users)?;
        notes.push(note);
        let big = rps(&v);
        let rss_ok = rss.map(|b| b <= 256 * 1024 * 1024);
        rows.push(Row {
            name: "issue-token ES256".to_owned(),
            store: big_store.clone(),
            result: Some(v),
            rss,
            target: "RSS ≤ 256 MB".to_owned(),
            met: rss_ok,
            met_note: String::new(),
        });
        if let Some(small) = small {
            let ratio = big / small;
            rows.push(row(
                &format!("issue-token {} ÷ {}", human(opts.big_users), human(opts.users)),
                "–",
                None,
                None,
                "≥ 0.8",
                Some((ratio >= 0.8, format!("{ratio:.2}"))),
            ));
        }
    } else if opts.wants("seeded") {
        rows.push(row(
            "issue-token ES256",
            &big_store,
            None,
            None,
            "RSS ≤ 256 MB; ÷ 10 k ≥ 0.8",
            None,
        ));
        if let Some(r) = rows.last_mut() {
            r.met_note = "not run: add `--big`".to_owned();
        }
    }
    if opts.wants("postgres") {
        match opts.database_url.as_deref() {
            Some(url) => bench.postgres(url, &mut rows, &mut notes)?,
            None => {
                rows.push(row("issue-token, create-user", "PostgreSQL", None, None, "–", None));
                if let Some(r) = rows.last_mut() {
                    r.met_note = "not run: set DATABASE_URL or --database-url".to_owned();
                }
            }
        }
    }
    let load_after = load_average();

    // The record.
    let record = RunRecord::now(&root, "bench", args);
    let transport = if opts.https {
        "HTTPS (rustls, keep-alive) to the `--listen` port"
    } else {
        "plain HTTP/1.1 keep-alive to the `--http-listen` port (no TLS cost on either side)"
    };
    let table = table(&rows);
    let mut out = record.heading();
    out.push_str(&format!(
        "- machine: {} cores, {}, {} RAM, Linux {}, {}\n",
        machine.cores, machine.cpu, machine.memory, machine.kernel, machine.rustc
    ));
    out.push_str(&format!(
        "- load: {} connections, {} s measured after {} s warm-up per benchmark; {transport}\n",
        opts.connections, opts.duration, opts.warmup
    ));
    if !opts.build {
        out.push_str("- binaries: built before this run (`--no-build`), possibly from other sources than the commit above\n");
    }
    out.push_str(&format!("- pinning: {}\n", bench.pin.describe()));
    out.push_str(&format!(
        "- load average (1, 5, 15 min) before: {load_before}; after: {load_after}{}\n",
        if busy(&load_before) {
            " — other work was running on this machine, so expect noise"
        } else {
            ""
        }
    ));
    out.push_str(
        "- CPU cores: CPU used during each measured window by the server, the load generator and \
         everything else on the machine; \"other\" well above 0 means other work competed and the \
         figures are noisy. Non-2xx counts transport errors too.\n",
    );
    for n in &notes {
        out.push_str(&format!("- {n}\n"));
    }
    out.push('\n');
    out.push_str(&table);
    println!("\n{out}");

    if opts.write {
        write_block(&root, BEGIN, END, "Latest results", &out)?;
        eprintln!("xtask bench: wrote the table into BENCHMARKS.md");
    }
    drop(scratch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_are_increasing_uuid_v7() {
        let mut rng = 7;
        let ids: Vec<[u8; 16]> =
            (0..10_000).map(|i| seeded_uuid(1_700_000_000_000, i, splitmix(&mut rng))).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        for id in &ids {
            assert_eq!(id[6] >> 4, 7, "version");
            assert_eq!(id[8] >> 6, 0b10, "variant");
        }
        let text = hyphenated(&ids[0]);
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "7");
        assert_eq!(&text[..13], "018bcfe5-6800");
    }

    #[test]
    fn a_new_run_moves_the_previous_one_to_the_earlier_runs() {
        let (begin, end) = ("<!-- b:begin -->", "<!-- b:end -->");
        let doc = "# T\n\n<!-- b:begin -->\n### Run 1\n<!-- b:end -->\n\n## Earlier\n\n<!-- b:earlier -->\n\n### Run 0\n";
        let updated = with_block(doc, begin, end, "Latest", "### Run 2\n");
        assert_eq!(
            updated,
            "# T\n\n<!-- b:begin -->\n### Run 2\n<!-- b:end -->\n\n## Earlier\n\n<!-- b:earlier -->\n\n### Run 1\n\n### Run 0\n"
        );
        // Without the marker the previous run is replaced; without the block it is added.
        let plain = "<!-- b:begin -->\n### Run 1\n<!-- b:end -->\n";
        assert_eq!(
            with_block(plain, begin, end, "L", "x\n"),
            "<!-- b:begin -->\nx\n<!-- b:end -->\n"
        );
        assert_eq!(
            with_block("# T\n", begin, end, "L", "x\n"),
            "# T\n\n## L\n\n<!-- b:begin -->\nx\n<!-- b:end -->\n"
        );
    }

    #[test]
    fn options_parse() {
        let args: Vec<String> = ["--", "--duration", "12", "--big", "--only=issue-token,rs256"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let o = parse_options(&args).unwrap();
        assert_eq!(o.duration, 12.0);
        assert!(o.big && o.wants("rs256") && !o.wants("revoke"));
        assert!(parse_options(&["--nope".to_owned()]).is_err());
        assert!(parse_options(&["--duration".to_owned()]).is_err());
    }
}
