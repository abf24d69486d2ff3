//! The official JS SDK in a real browser: `tests/browser/run.mjs` bundles it with esbuild,
//! serves the page from two loopback origins and drives Debian's Chromium with
//! playwright-core; this harness starts `acs-identity serve` between the two steps, on a
//! fresh data directory and a free port, allowing only the page's first origin
//! (`--cors-allowed-origins`) and trusting a local OpenID issuer for the Teams exchange.
//!
//! Needs `node`, the packages of `tests/browser` (`cargo xtask compat-setup` installs
//! them), `/usr/bin/chromium` and `certutil` (`.ci/run` installs both).
#![cfg(unix)]

mod support;

use support::SETUP_HINT;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use acs_identity_testkit::issuer::TEAMS_AUDIENCE;
use acs_identity_testkit::{uuid_like, TestIssuer};
use serde_json::{json, Value};

/// Bundling, Chromium's start and every case, with room to spare on a busy machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(360);

/// Kills a child process when dropped (the driver or the server, on any failure).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require(what: &str, ok: bool, hint: &str) {
    assert!(ok, "{what} is missing: {hint}");
}

/// Lines the driver prints, read on a thread so it never blocks on a full pipe.
fn lines_of(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn js_sdk_in_chromium() {
    let root = support::workspace_root();
    let browser_dir = root.join("tests/browser");
    require(
        "the browser test's packages",
        browser_dir.join("node_modules/playwright-core/package.json").is_file()
            && browser_dir
                .join("node_modules/@azure/communication-identity/package.json")
                .is_file(),
        SETUP_HINT,
    );
    require(
        "Chromium",
        Path::new("/usr/bin/chromium").is_file(),
        "apt-get install chromium (.ci/run does)",
    );
    require(
        "certutil",
        Command::new("certutil").arg("-H").output().is_ok(),
        "apt-get install libnss3-tools (.ci/run does)",
    );

    // The Teams user whose Entra token the page exchanges.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime for the test issuer");
    let issuer = runtime.block_on(TestIssuer::start());
    let (app_id, user_id) = (uuid_like(), uuid_like());
    let teams_token = issuer.mint(&issuer.claims(
        TEAMS_AUDIENCE,
        &user_id,
        &app_id,
        "Teams.ManageCalls Teams.ManageChats",
    ));

    let started = Instant::now();
    let mut driver = Command::new("node");
    driver
        .arg(browser_dir.join("run.mjs"))
        .current_dir(&browser_dir)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(shot) = std::env::var_os("ACS_BROWSER_SCREENSHOT") {
        driver.env("ACS_BROWSER_SCREENSHOT", shot);
    }
    let mut driver = Killed(driver.spawn().expect("run node tests/browser/run.mjs"));
    let mut stdin = driver.0.stdin.take().expect("driver stdin");
    let out = lines_of(driver.0.stdout.take().expect("driver stdout"));
    let err = lines_of(driver.0.stderr.take().expect("driver stderr"));
    let mut printed = Vec::new();
    let deadline = started + RUN_TIMEOUT;
    let next_line = |printed: &mut Vec<String>| -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = out.recv_timeout(left).ok()?;
        printed.push(line.clone());
        Some(line)
    };

    // The page's origins, then the service allowing only the first.
    let origins = loop {
        match next_line(&mut printed) {
            Some(line) if line.starts_with("origins ") => break line,
            Some(_) => continue,
            None => panic!(
                "the driver printed no origins\n{}\n--- stderr ---\n{}",
                printed.join("\n"),
                err.try_iter().collect::<Vec<_>>().join("\n")
            ),
        }
    };
    let mut words = origins.split_whitespace().skip(1);
    let (allowed, other) = (words.next().expect("allowed origin"), words.next().expect("origin"));
    assert_ne!(allowed, other);

    let data_dir = tempfile::tempdir().expect("temporary data directory");
    let stderr_path = data_dir.path().join("server.stderr");
    let mut trust = std::ffi::OsString::from(format!("{}=", issuer.issuer()));
    trust.push(issuer.jwks_file());
    let (server, banner) = support::spawn_serve(
        support::command()
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--cors-allowed-origins", allowed])
            .arg("--trust-issuer")
            .arg(trust)
            .stderr(Stdio::from(File::create(&stderr_path).expect("server stderr file"))),
    );
    let server = Killed(server);
    let server_log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let banner = banner.unwrap_or_else(|printed| {
        panic!("serve printed no banner\n{printed}\n--- stderr ---\n{}", server_log())
    });
    let ca = data_dir.path().join("tls/ca.pem");
    let config = json!({
        "connectionString": banner.connection_string,
        "ca": ca,
        "teamsToken": teams_token,
        "teamsAppId": app_id,
        "teamsUserId": user_id,
    });
    writeln!(stdin, "{config}").expect("configuration to the driver");
    drop(stdin);

    // Every case, then the summary.
    let summary = loop {
        match next_line(&mut printed) {
            Some(line) if line.ends_with(" failed") && line.contains(" passed, ") => break line,
            Some(_) => continue,
            None => break String::new(),
        }
    };
    let status = driver.0.wait().expect("driver exit");
    let report = || {
        format!(
            "{}\n--- driver stderr ---\n{}\n--- server stderr ---\n{}",
            printed.join("\n"),
            err.try_iter().collect::<Vec<_>>().join("\n"),
            server_log()
        )
    };
    assert!(status.success() && summary.ends_with(" 0 failed"), "browser run failed\n{}", report());
    let passed: usize = summary.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    // Two bundles of 16 cases and 3 checks each, and the disallowed origin's two.
    assert!(passed >= 2 * 19 + 2, "too few checks ran ({summary})\n{}", report());

    // The service saw what the browser did: preflights from the page's origin answered
    // (the Teams exchange's among them), and the other origin's refused CORS.
    drop(server);
    let log: Vec<Value> =
        server_log().lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let preflights = |path: &str, allowed: bool| {
        log.iter()
            .filter(|l| l["message"] == "CORS preflight" && l["status"] == 204)
            .filter(|l| l["path"] == path && l["origin_allowed"] == allowed)
            .count()
    };
    assert!(preflights("/teamsUser/:exchangeAccessToken", true) >= 2, "{}", report());
    assert!(preflights("/identities", false) >= 1, "{}", report());
    println!("{}\nbrowser run took {:.1} s", printed.join("\n"), started.elapsed().as_secs_f64());
    drop(runtime);
}
