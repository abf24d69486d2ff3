//! What the CLI's test binaries share: the binary with a clean environment, and starting
//! `acs-identity serve` up to its banner. Each binary uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_acs-identity");
/// What to do when the official SDKs or the browser test's packages are missing.
pub(crate) const SETUP_HINT: &str = "run `cargo xtask compat-setup` first";

/// The workspace's root folder.
pub(crate) fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/acs_identity_cli has a workspace root")
        .to_path_buf()
}
/// How long `serve` may take to print its banner.
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Variables of the caller that would change what the binary does.
const CLEARED_ENV: [&str; 3] =
    ["COMMUNICATION_SERVICES_CONNECTION_STRING", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"];

/// A command with a clean environment: no `ACSID_*`, no connection string, no CA variables;
/// `NO_COLOR` set and no standard input.
pub(crate) fn command() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("ACSID_") || CLEARED_ENV.contains(&key_text.as_ref()) {
            cmd.env_remove(&key);
        }
    }
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

/// What `serve` prints before it takes requests.
#[derive(Debug)]
pub(crate) struct Banner {
    /// `https://127.0.0.1:<port>`.
    pub(crate) endpoint: String,
    /// `endpoint=…;accesskey=…`.
    pub(crate) connection_string: String,
    /// The web console's link, with the key in its fragment.
    pub(crate) console_link: String,
    /// Every line printed up to the connection string, for failure messages.
    pub(crate) printed: String,
}

/// Spawns `serve` (a [`command`] with its arguments, to which it adds
/// `--print-connection-string`: its stdout is a pipe) with standard output piped, keeps
/// draining that output on a thread so the server never blocks on it, and waits for the
/// endpoint and connection string. When they do not come within [`STARTUP_TIMEOUT`], the
/// banner is `Err` with everything printed so far.
pub(crate) fn spawn_serve(serve: &mut Command) -> (Child, Result<Banner, String>) {
    let mut child = serve
        .arg("--print-connection-string")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start acs-identity serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        // The receiver is gone after startup; keep reading so the server never blocks.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut endpoint, mut connection_string, mut console_link, mut printed) =
        (String::new(), String::new(), String::new(), String::new());
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while endpoint.is_empty() || connection_string.is_empty() || console_link.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            return (child, Err(printed));
        };
        printed.push_str(&line);
        printed.push('\n');
        let line = line.trim();
        if let Some(e) = line.strip_prefix("acs-identity is serving at ") {
            e.trim().clone_into(&mut endpoint);
        } else if line.starts_with("endpoint=") {
            line.clone_into(&mut connection_string);
        } else if line.starts_with("https://") && line.contains("/console/#accesskey=") {
            line.clone_into(&mut console_link);
        }
    }
    (child, Ok(Banner { endpoint, connection_string, console_link, printed }))
}
