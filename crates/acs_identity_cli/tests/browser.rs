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

use support::{BrowserDriver, Killed};

use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

use acs_identity_testkit::issuer::TEAMS_USER_SCOPES;
use acs_identity_testkit::uuid_like;
use serde_json::{json, Value};

/// Bundling, Chromium's start and every case, with room to spare on a busy machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(360);

#[test]
fn js_sdk_in_chromium() {
    let browser_dir = BrowserDriver::dir(&["playwright-core", "@azure/communication-identity"]);

    // The Teams user whose Entra token the page exchanges.
    let (runtime, issuer) = support::test_issuer();
    let (app_id, user_id) = (uuid_like(), uuid_like());
    let teams_token = issuer.teams_token(&user_id, &app_id, TEAMS_USER_SCOPES);

    let started = Instant::now();
    let envs: Vec<_> = std::env::var_os("ACS_BROWSER_SCREENSHOT")
        .map(|shot| ("ACS_BROWSER_SCREENSHOT", shot))
        .into_iter()
        .collect();
    let mut driver = BrowserDriver::start(&browser_dir, "run.mjs", &envs, RUN_TIMEOUT);

    // The page's origins, then the service allowing only the first.
    let origins = loop {
        match driver.next_line() {
            Some(line) if line.starts_with("origins ") => break line,
            Some(_) => continue,
            None => panic!("the driver printed no origins\n{}", driver.report("")),
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
        support::serve_command(data_dir.path())
            .args(["--log-format", "json"])
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
    driver.configure(&config);

    // Every case, then the summary.
    let (summary, status) = driver.finish();
    let report = || driver.report(&server_log());
    assert!(status.success() && summary.ends_with(" 0 failed"), "browser run failed\n{}", report());
    let passed = support::passed(&summary);
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
    println!(
        "{}\nbrowser run took {:.1} s",
        driver.printed.join("\n"),
        started.elapsed().as_secs_f64()
    );
    drop(runtime);
}
