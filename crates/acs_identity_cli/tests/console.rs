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

use support::{BrowserDriver, Killed};

use std::fs::File;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

const RUN_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn console_in_chromium() {
    let browser_dir = BrowserDriver::dir(&["playwright-core"]);

    let data_dir = tempfile::tempdir().expect("temporary data directory");
    let stderr_path = data_dir.path().join("server.stderr");
    let audit_path = data_dir.path().join("audit.jsonl");
    let (server, banner) = support::spawn_serve(
        support::serve_command(data_dir.path())
            .args(["--log-format", "json"])
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
    let mut driver = BrowserDriver::start(&browser_dir, "console.mjs", &[], RUN_TIMEOUT);
    driver.configure(&json!({
        "consoleLink": banner.console_link,
        "connectionString": banner.connection_string,
        "ca": data_dir.path().join("tls/ca.pem"),
        "shots": std::env::var_os("ACS_CONSOLE_SHOTS").map(PathBuf::from),
    }));
    let (summary, status) = driver.finish();
    let report = || driver.report(&server_log());
    assert!(status.success() && summary.ends_with(" 0 failed"), "console run failed\n{}", report());
    let passed = support::passed(&summary);
    assert!(passed >= 30, "too few checks ran ({summary})\n{}", report());

    // No secret reached the service's log or the audit log; the audit log saw the page's
    // writes, under the key.
    drop(server);
    let token = driver
        .printed
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
