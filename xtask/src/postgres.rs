//! Which PostgreSQL server `cargo xtask test` gives the tests that need one, and what it
//! says when there is none.
//!
//! The tests that need PostgreSQL are those of the test binaries named `postgres`; run
//! without `DATABASE_URL` they fail (`acs_identity_store::testing`). So before the run:
//! `DATABASE_URL` when set; else a server answering on 127.0.0.1:5432 (or
//! `ACSID_TEST_PG_PROBE`), as `postgres://postgres@<that address>/test`, which is what
//! `.ci/run` sets up; else nextest's profile `no-postgres` (`.config/nextest.toml`) leaves
//! those binaries out, nextest reports their tests as skipped, and the closing summary says
//! how many and why.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};

/// Where a server is looked for when `DATABASE_URL` is unset.
const DEFAULT_PROBE: &str = "127.0.0.1:5432";
/// Overrides [`DEFAULT_PROBE`] (`host:port`).
const PROBE_ENV: &str = "ACSID_TEST_PG_PROBE";
/// The nextest profile that leaves out the tests needing PostgreSQL.
pub(crate) const NO_POSTGRES_PROFILE: &str = "no-postgres";
/// How long the probe waits to connect and for the answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The PostgreSQL server the test run uses, if any.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Postgres {
    /// `DATABASE_URL` was set by the caller.
    Given,
    /// `DATABASE_URL` was unset and a server answered at `addr`: the tests get `url`.
    Found { addr: String, url: String },
    /// `DATABASE_URL` was unset and nothing answered at `addr`, for this reason.
    Unreachable { addr: String, why: String },
}

impl Postgres {
    /// Looks at `DATABASE_URL`, then probes for a server; says on stderr what it chose.
    pub(crate) fn find() -> Postgres {
        let found = if std::env::var("DATABASE_URL").is_ok_and(|u| !u.trim().is_empty()) {
            Postgres::Given
        } else {
            let addr = std::env::var(PROBE_ENV)
                .ok()
                .filter(|a| !a.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_PROBE.to_owned());
            match probe(&addr) {
                Ok(()) => Postgres::Found { url: format!("postgres://postgres@{addr}/test"), addr },
                Err(why) => Postgres::Unreachable { addr, why },
            }
        };
        match &found {
            Postgres::Given => eprintln!("xtask test: the PostgreSQL tests use DATABASE_URL"),
            Postgres::Found { addr, url } => eprintln!(
                "xtask test: DATABASE_URL is unset and a PostgreSQL server answers on {addr}: \
                 the PostgreSQL tests use {url}"
            ),
            Postgres::Unreachable { addr, why } => eprintln!(
                "xtask test: DATABASE_URL is unset and no PostgreSQL server answers on {addr} \
                 ({why}): the tests that need one (test binaries named `postgres`) are left out \
                 with nextest's profile `{NO_POSTGRES_PROFILE}` and reported as skipped"
            ),
        }
        found
    }

    /// Sets up `cmd` (`cargo nextest run …`) for this server: its URL, or the profile that
    /// leaves the PostgreSQL tests out (through `NEXTEST_PROFILE`, so a `--profile` given
    /// on the command line still wins).
    pub(crate) fn configure(&self, cmd: &mut Command) {
        match self {
            Postgres::Given => {}
            Postgres::Found { url, .. } => {
                cmd.env("DATABASE_URL", url);
            }
            Postgres::Unreachable { .. } => {
                // A selection of only PostgreSQL tests leaves nothing to run: that is the
                // skip reported below, not a failure (`--no-tests` on the command line wins).
                cmd.env("NEXTEST_PROFILE", NO_POSTGRES_PROFILE).env("NEXTEST_NO_TESTS", "warn");
            }
        }
    }

    /// The closing line about PostgreSQL; `skipped` is what nextest reported it left out.
    pub(crate) fn summary(&self, skipped: Option<u64>) -> String {
        match self {
            Postgres::Given => {
                "xtask test: the PostgreSQL tests ran against DATABASE_URL".to_owned()
            }
            Postgres::Found { url, .. } => {
                format!(
                    "xtask test: the PostgreSQL tests ran against {url} (DATABASE_URL was unset)"
                )
            }
            Postgres::Unreachable { addr, why } => {
                if skipped == Some(0) {
                    return format!(
                        "xtask test: none of the selected tests needs PostgreSQL (DATABASE_URL \
                         is unset and no server answers on {addr}: {why})"
                    );
                }
                let what = match skipped {
                    Some(1) => "1 test was skipped".to_owned(),
                    Some(n) => format!("{n} tests were skipped"),
                    None => format!(
                        "the tests of the test binaries named `postgres` were skipped (nextest \
                         did not say how many; its profile `{NO_POSTGRES_PROFILE}` was not used \
                         or its output changed)"
                    ),
                };
                format!(
                    "xtask test: {what} because they need PostgreSQL: DATABASE_URL is unset and \
                     no server answers on {addr} ({why}). Start one there or set DATABASE_URL \
                     to run them."
                )
            }
        }
    }
}

/// Whether a PostgreSQL server answers at `addr`: it must answer the protocol's
/// `SSLRequest` with `S` or `N` within [`PROBE_TIMEOUT`].
pub(crate) fn probe(addr: &str) -> Result<(), String> {
    let addrs: Vec<SocketAddr> =
        addr.to_socket_addrs().map_err(|e| format!("cannot resolve {addr}: {e}"))?.collect();
    let mut why = format!("{addr} names no address");
    for a in addrs {
        let mut stream = match TcpStream::connect_timeout(&a, PROBE_TIMEOUT) {
            Ok(s) => s,
            Err(e) => {
                why = e.to_string();
                continue;
            }
        };
        let _ = stream.set_read_timeout(Some(PROBE_TIMEOUT));
        let _ = stream.set_write_timeout(Some(PROBE_TIMEOUT));
        // SSLRequest: length 8, then the code 80877103 (1234 << 16 | 5679).
        const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        let mut answer = [0u8; 1];
        return match stream.write_all(&SSL_REQUEST).and_then(|()| stream.read_exact(&mut answer)) {
            Ok(()) if matches!(answer[0], b'S' | b'N') => Ok(()),
            Ok(()) => Err(format!("{a} answered {:#04x}, not as PostgreSQL does", answer[0])),
            Err(e) => Err(format!("{a} accepted a connection but did not answer: {e}")),
        };
    }
    Err(why)
}

/// Runs `cmd` with its stderr passed through line by line; returns its exit status and
/// how many tests nextest said the profile's default filter left out.
pub(crate) fn run_counting_skips(
    cmd: &mut Command,
) -> anyhow::Result<(std::process::ExitStatus, Option<u64>)> {
    eprintln!("xtask: running {cmd:?}");
    let mut child =
        cmd.stderr(Stdio::piped()).spawn().with_context(|| format!("cannot run {cmd:?}"))?;
    let mut skipped = None;
    if let Some(stderr) = child.stderr.take() {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let mut out = std::io::stderr().lock();
            let _ = out.write_all(&line);
            let _ = out.flush();
            if let Some(n) = default_filter_skips(&String::from_utf8_lossy(&line)) {
                skipped = Some(n);
            }
        }
    }
    Ok((child.wait()?, skipped))
}

/// From nextest's `Starting 12 tests across 3 binaries (40 tests skipped, including 32
/// tests via profile.no-postgres.default-filter)` (or `(32 tests skipped via profile…)`):
/// the 32; 0 from a `Starting` line that names no default filter; `None` from any other
/// line. Colours are allowed.
fn default_filter_skips(line: &str) -> Option<u64> {
    let line = strip_ansi(line);
    let rest = line.trim_start().strip_prefix("Starting ")?;
    if !rest.contains(" across ") {
        return None;
    }
    let marker = format!("via profile.{NO_POSTGRES_PROFILE}.default-filter");
    let Some(end) = rest.find(&marker) else { return Some(0) };
    // The last number before the marker: `… including 32 tests via` or `(32 tests skipped via`.
    rest[..end].split_whitespace().rev().find_map(|w| w.trim_start_matches('(').parse().ok())
}

/// `s` without ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Installs cargo-nextest (needed to report skipped tests; `cargo test` cannot).
pub(crate) fn install_nextest(cargo: &str) -> anyhow::Result<()> {
    eprintln!(
        "xtask test: cargo-nextest is not installed; installing it, since only nextest can \
         report the PostgreSQL tests as skipped"
    );
    let status = Command::new(cargo)
        .args(["install", "cargo-nextest", "--locked"])
        .status()
        .context("cannot run cargo install")?;
    if !status.success() {
        bail!("cargo install cargo-nextest failed with {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    /// A one-connection server on 127.0.0.1 that reads the probe's 8 bytes and answers
    /// `answer` (nothing when empty, then holds the connection past the probe's timeout).
    fn server(answer: &'static [u8]) -> (String, std::thread::JoinHandle<[u8; 8]>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = [0u8; 8];
            s.read_exact(&mut request).unwrap();
            if answer.is_empty() {
                std::thread::sleep(PROBE_TIMEOUT + Duration::from_millis(500));
            } else {
                s.write_all(answer).unwrap();
            }
            request
        });
        (addr, handle)
    }

    #[test]
    fn the_probe_wants_a_postgres_answer() {
        for answer in [&b"N"[..], b"S"] {
            let (addr, handle) = server(answer);
            assert_eq!(probe(&addr), Ok(()));
            assert_eq!(handle.join().unwrap(), [0, 0, 0, 8, 4, 210, 22, 47], "an SSLRequest");
        }
        let (addr, handle) = server(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        assert!(probe(&addr).unwrap_err().contains("not as PostgreSQL does"));
        handle.join().unwrap();
        let (addr, handle) = server(b"");
        assert!(probe(&addr).unwrap_err().contains("did not answer"));
        handle.join().unwrap();
        // Nothing listens on port 1.
        assert!(probe("127.0.0.1:1").is_err());
        assert!(probe("no-such-host.invalid:5432").unwrap_err().contains("cannot resolve"));
    }

    #[test]
    fn the_skip_count_comes_from_nextests_starting_line() {
        let plain =
            "    Starting 40 tests across 3 binaries (34 tests skipped, including 32 tests \
                     via profile.no-postgres.default-filter)";
        assert_eq!(default_filter_skips(plain), Some(32));
        let one = "Starting 2 tests across 1 binary (7 tests skipped, including 1 test via \
                   profile.no-postgres.default-filter)";
        assert_eq!(default_filter_skips(one), Some(1));
        let only = "Starting 50 tests across 3 binaries (28 tests skipped via \
                    profile.no-postgres.default-filter)";
        assert_eq!(default_filter_skips(only), Some(28));
        let coloured = "\u{1b}[1;32m    Starting\u{1b}[0m \u{1b}[1m2\u{1b}[0m tests across \
                        \u{1b}[1m1\u{1b}[0m binary (\u{1b}[1m7\u{1b}[0m tests skipped, including \
                        \u{1b}[1m5\u{1b}[0m tests via \u{1b}[1mprofile.no-postgres.default-filter\u{1b}[0m)";
        assert_eq!(default_filter_skips(coloured), Some(5));
        let none = "Starting 9 tests across 1 binary (3 tests skipped)";
        assert_eq!(default_filter_skips(none), Some(0));
        assert_eq!(default_filter_skips("   Compiling xtask v0.1.0"), None);
        assert_eq!(default_filter_skips("PASS [0.1s] x::y Starting across"), None);
    }

    #[test]
    fn the_summary_says_how_many_and_why() {
        let none = Postgres::Unreachable {
            addr: "127.0.0.1:5432".to_owned(),
            why: "Connection refused (os error 111)".to_owned(),
        };
        let line = none.summary(Some(32));
        for part in ["32 tests were skipped", "need PostgreSQL", "127.0.0.1:5432", "refused"] {
            assert!(line.contains(part), "{part}: {line}");
        }
        assert!(none.summary(Some(1)).contains("1 test was skipped"));
        assert!(none.summary(Some(0)).contains("none of the selected tests needs PostgreSQL"));
        assert!(none.summary(None).contains("test binaries named `postgres`"));
        let found = Postgres::Found {
            addr: "127.0.0.1:5432".to_owned(),
            url: "postgres://postgres@127.0.0.1:5432/test".to_owned(),
        };
        assert!(found
            .summary(None)
            .contains("ran against postgres://postgres@127.0.0.1:5432/test"));
    }
}
