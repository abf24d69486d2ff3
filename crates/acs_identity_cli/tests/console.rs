//! The web console in a real browser: starts `acs-identity serve` on a fresh data directory
//! and a free port, with the audit log on, hands the console link its banner printed to
//! `tests/browser/console.mjs` (playwright-core driving Debian's Chromium), and checks
//! afterwards that neither the key nor a token the page showed reached the server's log or
//! the audit log.
//!
//! Needs `node`, the packages of `tests/browser` (`cargo xtask compat-setup` installs
//! them), `/usr/bin/chromium` and `certutil` (`.ci/run` installs both).
//! `ACS_CONSOLE_SHOTS=<dir>` saves a screenshot of each view there (docs/console/ holds
//! the README's).
#![cfg(unix)]

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/acs_identity_cli has a workspace root")
        .to_path_buf()
}

/// Kills a child process when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
fn console_in_chromium() {
    let root = workspace_root();
    let browser_dir = root.join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core/package.json").is_file(),
        "playwright-core is missing: run `cargo xtask compat-setup` first"
    );
    assert!(
        Path::new("/usr/bin/chromium").is_file(),
        "Chromium is missing: apt-get install chromium"
    );
    assert!(
        Command::new("certutil").arg("-H").output().is_ok(),
        "certutil is missing: apt-get install libnss3-tools"
    );

    let data_dir = tempfile::tempdir().expect("temporary data directory");
    let stderr_path = data_dir.path().join("server.stderr");
    let audit_path = data_dir.path().join("audit.jsonl");
    let (server, banner) = support::spawn_serve(
        support::command()
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .env("ACSID_AUDIT_LOG", &audit_path)
            .env("ACSID_LOG", "debug")
            .stderr(Stdio::from(File::create(&stderr_path).expect("server stderr file"))),
    );
    let server = Killed(server);
    let server_log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let banner = banner.unwrap_or_else(|printed| {
        panic!("serve printed no banner\n{printed}\n--- stderr ---\n{}", server_log())
    });
    assert!(
        banner.console_link.starts_with(&format!("{}/console/#accesskey=", banner.endpoint)),
        "{}",
        banner.printed
    );
    let key = banner.connection_string.split("accesskey=").nth(1).expect("key").to_owned();

    let started = Instant::now();
    let mut driver = Command::new("node");
    driver
        .arg(browser_dir.join("console.mjs"))
        .current_dir(&browser_dir)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut driver = Killed(driver.spawn().expect("run node tests/browser/console.mjs"));
    let config = json!({
        "consoleLink": banner.console_link,
        "connectionString": banner.connection_string,
        "ca": data_dir.path().join("tls/ca.pem"),
        "shots": std::env::var_os("ACS_CONSOLE_SHOTS").map(PathBuf::from),
    });
    let mut stdin = driver.0.stdin.take().expect("driver stdin");
    writeln!(stdin, "{config}").expect("configuration to the driver");
    drop(stdin);
    let out = lines_of(driver.0.stdout.take().expect("driver stdout"));
    let err = lines_of(driver.0.stderr.take().expect("driver stderr"));
    let deadline = started + RUN_TIMEOUT;
    let mut printed = Vec::new();
    let summary = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match out.recv_timeout(left) {
            Ok(line) => {
                printed.push(line.clone());
                if line.ends_with(" failed") && line.contains(" passed, ") {
                    break line;
                }
            }
            Err(_) => break String::new(),
        }
    };
    let status = driver.0.wait().expect("driver exit");
    let report = || {
        format!(
            "{}\n--- driver stderr ---\n{}\n--- server stderr ---\n{}",
            printed
                .iter()
                .filter(|l| !l.starts_with("token "))
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
            err.try_iter().collect::<Vec<_>>().join("\n"),
            server_log()
        )
    };
    assert!(status.success() && summary.ends_with(" 0 failed"), "console run failed\n{}", report());
    let passed: usize = summary.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(passed >= 30, "too few checks ran ({summary})\n{}", report());

    // No secret reached the service's log or the audit log; the audit log saw the page's
    // writes, under the key.
    drop(server);
    let token = printed
        .iter()
        .find_map(|l| l.strip_prefix("token "))
        .expect("the driver printed the token it read")
        .to_owned();
    let log = server_log();
    let audit = std::fs::read_to_string(&audit_path).expect("audit log");
    for (name, text) in [("server log", &log), ("audit log", &audit)] {
        assert!(!text.contains(&key), "the key is in the {name}");
        assert!(
            !text.contains(&key.replace('+', "%2B").replace('/', "%2F")),
            "the key is in the {name}"
        );
        assert!(!text.contains(&token), "the token is in the {name}");
        assert!(!text.contains(token.split('.').nth(2).unwrap()), "a signature is in the {name}");
        assert!(!text.contains("accesskey"), "accesskey is in the {name}");
    }
    for op in ["identity.create_with_token", "token.issue", "token.revoke", "identity.delete"] {
        assert!(
            audit.lines().any(
                |l| l.contains(&format!("\"operation\":\"{op}\"")) && l.contains("key:primary")
            ),
            "no {op} in the audit log:\n{audit}"
        );
    }
    assert!(log.contains("/console/"), "the request log shows the console's files");
    println!("{}\nconsole run took {:.1} s", report(), started.elapsed().as_secs_f64());
}
