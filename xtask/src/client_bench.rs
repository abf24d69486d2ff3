//! `cargo xtask client-bench`: the client's own CPU time per `create_user` + `get_token`
//! pair, for this crate's client and for the official Python and JS SDKs, against one
//! release server on loopback (plain HTTP, so no client pays for TLS).
//!
//! Builds the release server and `crates/acs_identity/examples/cpu_per_call.rs`, installs
//! the official SDKs (`compat-setup`), starts `acs-identity serve` with a fresh data
//! directory, runs the three clients one after the other (`tests/compat/bench/`), then three
//! reference runs of the Rust example (azure_core's `reqwest` transport; pre-signed requests
//! through the transport alone; pre-signed bytes on a blocking socket), all of that `--rounds`
//! times, prints a table of each client's median round and writes it into BENCHMARKS.md between
//! the `client-bench` markers.
//!
//! Options (after `--`): `--pairs N` (2000 measured pairs per client), `--warmup N` (100
//! pairs before the measurement), `--rounds N` (3), `--no-pin` (do not pin the server to CPU 1
//! and the clients to CPU 0), `--no-write` (leave BENCHMARKS.md alone), `--no-build` (use the
//! binaries already built).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::bench::{
    command_output, load_average, pinned, read_banner, serve_command, Pinning, RunRecord,
};
use crate::root;

const BEGIN: &str = "<!-- client-bench:begin -->";
const END: &str = "<!-- client-bench:end -->";

/// Targets: this client's CPU per pair at most 1/10 of the JS SDK's and 1/30 of Python's.
const JS_FACTOR: f64 = 10.0;
const PYTHON_FACTOR: f64 = 30.0;

#[derive(Debug, Clone, PartialEq)]
struct Options {
    pairs: u64,
    warmup: u64,
    rounds: u64,
    pin: bool,
    write: bool,
    build: bool,
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut o =
        Options { pairs: 2000, warmup: 100, rounds: 3, pin: true, write: true, build: true };
    let mut it = args.iter().filter(|a| a.as_str() != "--");
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> anyhow::Result<u64> {
            let v = it.next().with_context(|| format!("{name} needs a value"))?;
            v.parse().with_context(|| format!("{name}: not a number: {v}"))
        };
        match a.as_str() {
            "--pairs" => o.pairs = value("--pairs")?,
            "--warmup" => o.warmup = value("--warmup")?,
            "--rounds" => o.rounds = value("--rounds")?,
            "--no-pin" => o.pin = false,
            "--no-write" => o.write = false,
            "--no-build" => o.build = false,
            other => bail!(
                "unknown option {other}; expected --pairs N, --warmup N, --rounds N, --no-pin, \
                 --no-write, --no-build"
            ),
        }
    }
    if o.pairs == 0 {
        bail!("--pairs must be at least 1");
    }
    if o.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    Ok(o)
}

/// User + system CPU of a process so far, in microseconds (`/proc/<pid>/stat`, 10 ms ticks).
fn process_cpu_us(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = command_output(Command::new("getconf").arg("CLK_TCK"))
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(100.0);
    Some(ticks as f64 * 1e6 / hz)
}

/// A running `acs-identity serve` and what its banner says. No `Debug`: it holds the
/// connection string.
struct Server {
    child: Child,
    http: String,
    connection_string: String,
}

impl Server {
    fn start(bin: &Path, data_dir: &Path, cpu: Option<&str>, log: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = serve_command(bin, data_dir, cpu, log_file);
        let mut child = cmd.spawn().with_context(|| format!("cannot start {cmd:?}"))?;
        let (mut http, mut cs) = (None, None);
        read_banner(&mut child, Duration::from_secs(120), log, |line| {
            if let Some(v) = line.strip_prefix("plain HTTP at ") {
                http = Some(v.trim().trim_end_matches('/').to_owned());
            } else if line.starts_with("endpoint=") && line.contains(";accesskey=") {
                cs = Some(line.to_owned());
            }
            http.is_some() && cs.is_some()
        })?;
        Ok(Server {
            child,
            http: http.unwrap_or_default(),
            connection_string: cs.unwrap_or_default(),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One client's result.
#[derive(Debug)]
struct Measured {
    name: &'static str,
    sdk: String,
    pairs: f64,
    cpu_us: f64,
    /// The lowest and highest CPU µs/pair over the rounds; `cpu_us` is their median.
    cpu_range: (f64, f64),
    user_us: f64,
    sys_us: f64,
    wall_s: f64,
    server_cpu_us: Option<f64>,
}

fn measure(
    name: &'static str,
    sdk: String,
    mut cmd: Command,
    server: &Server,
    opts: &Options,
) -> anyhow::Result<Measured> {
    cmd.arg("--endpoint")
        .arg(&server.http)
        .arg("--connection-string")
        .arg(&server.connection_string)
        .arg("--pairs")
        .arg(opts.pairs.to_string())
        .arg("--warmup")
        .arg(opts.warmup.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        // Production default. With RUST_BACKTRACE=1, azure_core's client-request-id policy
        // captures a backtrace per request (a missing header becomes an `Error`, then `None`).
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    eprintln!("xtask client-bench: {name}: {} + {} pairs", opts.warmup, opts.pairs);
    let server_before = process_cpu_us(server.child.id());
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    let server_after = process_cpu_us(server.child.id());
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("{name} client failed with {}: {stdout}", out.status);
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("{name} client printed no JSON: {stdout}"))?;
    let v: Value = serde_json::from_str(line)
        .with_context(|| format!("{name} client printed bad JSON: {line}"))?;
    let num = |k: &str| -> anyhow::Result<f64> {
        v.get(k).and_then(Value::as_f64).with_context(|| format!("{name}: no {k} in {line}"))
    };
    let pairs = num("pairs")?;
    let m = Measured {
        name,
        sdk,
        pairs,
        cpu_us: num("cpu_us_per_pair")?,
        cpu_range: (0.0, 0.0),
        user_us: num("user_us")? / pairs,
        sys_us: num("sys_us")? / pairs,
        wall_s: num("wall_s")?,
        // Includes the client's warm-up: a rough figure, for context only.
        server_cpu_us: server_before
            .zip(server_after)
            .map(|(b, a)| (a - b) / (pairs + opts.warmup as f64)),
    };
    eprintln!("xtask client-bench: {name}: {line}");
    Ok(m)
}

/// `name==1.2.3` from requirements.txt or `"name": "1.2.3"` from package.json.
fn pinned_version(file: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let l = l.trim();
            if let Some(v) = l.strip_prefix(&format!("{name}==")) {
                return Some(v.trim().to_owned());
            }
            let (k, v) = l.split_once(':')?;
            (k.trim().trim_matches('"') == name)
                .then(|| v.trim().trim_end_matches(',').trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

fn table(rows: &[Measured]) -> String {
    let rust = rows.iter().find(|r| r.name == "rust").map(|r| r.cpu_us);
    let mut t = String::from(
        "| client | pairs | CPU µs/pair (user + sys) | range over rounds | user µs/pair | \
         sys µs/pair | wall µs/pair | ÷ Rust | server CPU µs/pair |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in rows {
        let ratio =
            rust.filter(|&x| x > 0.0).map_or("–".to_owned(), |x| format!("{:.1}×", r.cpu_us / x));
        t.push_str(&format!(
            "| {} | {} | **{:.0}** | {:.0}–{:.0} | {:.0} | {:.0} | {:.0} | {ratio} | {} |\n",
            r.sdk,
            r.pairs,
            r.cpu_us,
            r.cpu_range.0,
            r.cpu_range.1,
            r.user_us,
            r.sys_us,
            r.wall_s * 1e6 / r.pairs,
            r.server_cpu_us.map_or("–".to_owned(), |s| format!("{s:.0}")),
        ));
    }
    t.push('\n');
    t.push_str("| target | limit for Rust | Rust | ratio | met? |\n|---|--:|--:|--:|---|\n");
    for (name, factor) in [("js", JS_FACTOR), ("python", PYTHON_FACTOR)] {
        let Some(other) = rows.iter().find(|r| r.name == name) else { continue };
        let Some(rust) = rust else { continue };
        let limit = other.cpu_us / factor;
        let label = if name == "js" { "JS SDK" } else { "Python SDK" };
        t.push_str(&format!(
            "| ≤ 1/{factor:.0} of the {label} | {limit:.0} µs | {rust:.0} µs | {label} ÷ Rust = {:.1} | {} |\n",
            other.cpu_us / rust,
            if rust <= limit { "yes" } else { "**no**" },
        ));
    }
    t
}

pub(crate) fn client_bench(args: &[String]) -> anyhow::Result<()> {
    let opts = parse_options(args)?;
    let root = root();
    let target_dir = crate::target_dir(&root);
    if opts.build {
        crate::build_release(&root, &["-p", "acs_identity_cli"])?;
        crate::build_release(&root, &["-p", "acs_identity", "--example", "cpu_per_call"])?;
    }
    let compat = crate::compat_setup()?;
    let server_bin = target_dir.join("release/acs-identity");
    let rust_bin = target_dir.join("release/examples/cpu_per_call");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pin = Pinning::detect(opts.pin, cores);
    let (server_cpu, client_cpu) = (pin.server.as_deref(), pin.loadgen.as_deref());

    let scratch =
        std::env::temp_dir().join(format!("acs-identity-client-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let load_before = load_average();
    let server =
        Server::start(&server_bin, &scratch.join("data"), server_cpu, &scratch.join("server.log"))?;
    eprintln!("xtask client-bench: server at {}", server.http);

    let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
    let bench_dir = root.join("tests/compat/bench");
    let python_sdk = format!(
        "Python: azure-communication-identity {} (sync), {}",
        pinned_version(
            &root.join("tests/compat/python/requirements.txt"),
            "azure-communication-identity"
        ),
        command_output(Command::new(&compat.python).arg("--version")).unwrap_or_default()
    );
    let js_sdk = format!(
        "JS: @azure/communication-identity {}, Node {}",
        pinned_version(&root.join("tests/compat/js/package.json"), "@azure/communication-identity"),
        command_output(Command::new(&node).arg("--version")).unwrap_or_default()
    );
    let with_pin = |program: &Path| pinned(client_cpu, program);
    let rust = |args: &[&str]| {
        let mut c = with_pin(&rust_bin);
        c.args(args);
        c
    };
    let node_path = which(&node).unwrap_or_else(|| PathBuf::from(&node));
    // The first three are the comparison, the rest references.
    let clients: Vec<Client<'_>> = vec![
        Client(
            "rust",
            "Rust: `acs_identity` (this repository), current-thread tokio".to_owned(),
            Box::new(move || rust(&[])),
        ),
        Client(
            "python",
            python_sdk,
            Box::new(|| {
                let mut c = with_pin(&compat.python);
                c.arg(bench_dir.join("cpu_per_call.py"));
                c
            }),
        ),
        Client(
            "js",
            js_sdk,
            Box::new(|| {
                let mut c = with_pin(&node_path);
                c.arg(bench_dir.join("cpu_per_call.mjs"));
                c
            }),
        ),
        Client(
            "rust-reqwest",
            "reference — Rust: `acs_identity` with azure_core's `reqwest` transport".to_owned(),
            Box::new(move || rust(&["--transport", "reqwest"])),
        ),
        Client(
            "rust-transport",
            "reference — Rust: the same two requests, signed once, through `Http1Transport` alone \
             (no pipeline, no signing, no JSON)"
                .to_owned(),
            Box::new(move || rust(&["--mode", "transport"])),
        ),
        Client(
            "rust-socket",
            "reference — Rust: the same two requests' bytes on a blocking socket (no HTTP \
             library, no async runtime)"
                .to_owned(),
            Box::new(move || rust(&["--mode", "socket"])),
        ),
    ];
    let mut rounds: Vec<Vec<Measured>> = clients.iter().map(|_| Vec::new()).collect();
    let result = (|| -> anyhow::Result<()> {
        for round in 1..=opts.rounds {
            eprintln!("xtask client-bench: round {round} of {}", opts.rounds);
            for (Client(name, sdk, command), runs) in clients.iter().zip(&mut rounds) {
                runs.push(measure(name, sdk.clone(), command(), &server, &opts)?);
            }
        }
        Ok(())
    })();
    let rows: Vec<Measured> = rounds.into_iter().filter_map(median_round).collect();
    drop(server);
    let _ = std::fs::remove_dir_all(&scratch);
    result?;
    let load_after = load_average();

    let record = RunRecord::now(&root, "client-bench", args);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let rustc = command_output(Command::new("rustc").arg("--version")).unwrap_or_default();

    let mut out = record.heading();
    out.push_str(&format!("- machine: {cores} cores, {cpu}, Linux {kernel}, {rustc}\n"));
    out.push_str(&format!(
        "- protocol: per client, {} warm-up pairs, then {} sequential `create_user` + `get_token([\"chat\"])` \
         pairs over plain HTTP/1.1 keep-alive to the server's `--http-listen` port (no TLS for anyone); \
         CPU = user + system time of the whole client process during the measured loop only; \
         every client {} times, in turn; the table shows each client's median round\n",
        opts.warmup, opts.pairs, opts.rounds
    ));
    out.push_str(
        "- environment: `RUST_BACKTRACE` and `RUST_LIB_BACKTRACE` removed for the clients (see \
         the findings above)\n",
    );
    out.push_str(&format!(
        "- pinning: {}\n",
        if pin.server.is_some() {
            "server on CPU 1, each client on CPU 0 (`taskset -c`)"
        } else {
            "none"
        }
    ));
    out.push_str(&format!(
        "- load average (1, 5, 15 min) before: {load_before}; after: {load_after}{}\n",
        if crate::bench::busy(&load_before) {
            " — other work was running on this machine; CPU time per call moves less than wall time with load, but caches and frequency still do"
        } else {
            ""
        }
    ));
    out.push_str(
        "- server CPU µs/pair: the server's CPU (10 ms ticks of `/proc/<pid>/stat`) over the client's whole run, \
         warm-up included, ÷ all its pairs; context only\n",
    );
    out.push('\n');
    out.push_str(&table(&rows));
    println!("\n{out}");

    if opts.write {
        crate::bench::write_block(&root, BEGIN, END, "Client CPU per call", &out)?;
        eprintln!("xtask client-bench: wrote the table into BENCHMARKS.md");
    }
    Ok(())
}

/// One client of the run: its name, what the table calls it, and how to start it.
struct Client<'a>(&'static str, String, Box<dyn Fn() -> Command + 'a>);

/// The round with the median CPU per pair, carrying the range over all rounds.
fn median_round(mut runs: Vec<Measured>) -> Option<Measured> {
    runs.sort_by(|a, b| a.cpu_us.total_cmp(&b.cpu_us));
    let range = (runs.first()?.cpu_us, runs.last()?.cpu_us);
    let mut median = runs.swap_remove(runs.len() / 2);
    median.cpu_range = range;
    Some(median)
}

/// The full path of a program on `PATH` (for `taskset`, which does not search it the same way).
fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let args: Vec<String> = ["--", "--pairs", "500", "--warmup", "10", "--no-write"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let o = parse_options(&args).unwrap();
        assert_eq!(
            o,
            Options { pairs: 500, warmup: 10, rounds: 3, pin: true, write: false, build: true }
        );
        let rounds = parse_options(&["--rounds".to_owned(), "5".to_owned()]).unwrap();
        assert_eq!(rounds.rounds, 5);
        assert!(parse_options(&["--rounds".to_owned(), "0".to_owned()]).is_err());
        assert!(parse_options(&["--pairs".to_owned(), "0".to_owned()]).is_err());
        assert!(parse_options(&["--bogus".to_owned()]).is_err());
    }

    #[test]
    fn the_median_round_carries_the_range() {
        let run = |cpu_us: f64| Measured {
            name: "rust",
            sdk: String::new(),
            pairs: 10.0,
            cpu_us,
            cpu_range: (0.0, 0.0),
            user_us: 0.0,
            sys_us: 0.0,
            wall_s: 0.0,
            server_cpu_us: None,
        };
        let median = median_round(vec![run(120.0), run(90.0), run(100.0)]).unwrap();
        assert_eq!(median.cpu_us, 100.0);
        assert_eq!(median.cpu_range, (90.0, 120.0));
        assert!(median_round(Vec::new()).is_none());
    }

    #[test]
    fn versions_from_pins() {
        let dir = std::env::temp_dir().join(format!("client-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let req = dir.join("requirements.txt");
        std::fs::write(&req, "azure-communication-identity==1.5.0\npytest==9\n").unwrap();
        assert_eq!(pinned_version(&req, "azure-communication-identity"), "1.5.0");
        let pkg = dir.join("package.json");
        std::fs::write(
            &pkg,
            "{\n  \"dependencies\": {\n    \"@azure/communication-identity\": \"1.3.1\"\n  }\n}\n",
        )
        .unwrap();
        assert_eq!(pinned_version(&pkg, "@azure/communication-identity"), "1.3.1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
