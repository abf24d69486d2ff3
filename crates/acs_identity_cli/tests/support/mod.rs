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

/// `serve` on `data_dir`, listening on a free port of 127.0.0.1, with a clean environment
/// ([`command`]); more flags may follow.
pub(crate) fn serve_command(data_dir: &std::path::Path) -> Command {
    let mut cmd = command();
    cmd.arg("serve").arg("--data-dir").arg(data_dir).args(["--listen", "127.0.0.1:0"]);
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

/// Kills a child process when dropped (a driver or the server, on any failure).
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines `reader` yields, read on a thread so the writer never blocks on a full pipe.
pub(crate) fn lines_of(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
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

/// A tokio runtime for a [`TestIssuer`](acs_identity_testkit::TestIssuer) and the issuer on it;
/// the runtime drives the issuer's JWKS endpoint, so it must outlive the issuer's use.
pub(crate) fn test_issuer() -> (tokio::runtime::Runtime, acs_identity_testkit::TestIssuer) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime for the test issuer");
    let issuer = runtime.block_on(acs_identity_testkit::TestIssuer::start());
    (runtime, issuer)
}

/// A script of `tests/browser` run by `node`, driving Debian's Chromium: it reads one JSON
/// line of configuration and prints a line per check and `N passed, M failed`.
pub(crate) struct BrowserDriver {
    child: Killed,
    stdin: Option<std::process::ChildStdin>,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    deadline: Instant,
    /// Every line the script printed so far.
    pub(crate) printed: Vec<String>,
}

impl BrowserDriver {
    /// The folder of the browser scripts, after checking that what they need is installed:
    /// `packages` in its `node_modules`, `/usr/bin/chromium` and `certutil`.
    pub(crate) fn dir(packages: &[&str]) -> std::path::PathBuf {
        let dir = workspace_root().join("tests/browser");
        for package in packages {
            assert!(
                dir.join("node_modules").join(package).join("package.json").is_file(),
                "{package} is missing: {SETUP_HINT}"
            );
        }
        assert!(
            std::path::Path::new("/usr/bin/chromium").is_file(),
            "Chromium is missing: apt-get install chromium (.ci/run does)"
        );
        assert!(
            Command::new("certutil").arg("-H").output().is_ok(),
            "certutil is missing: apt-get install libnss3-tools (.ci/run does)"
        );
        dir
    }

    /// Starts `node <script>` in `dir` (see [`Self::dir`]) with `envs`; everything it does
    /// must be done within `timeout` from now.
    pub(crate) fn start(
        dir: &std::path::Path,
        script: &str,
        envs: &[(&str, std::ffi::OsString)],
        timeout: Duration,
    ) -> Self {
        let mut driver = Command::new("node");
        driver
            .arg(dir.join(script))
            .current_dir(dir)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = Killed(
            driver.spawn().unwrap_or_else(|e| panic!("run node tests/browser/{script}: {e}")),
        );
        let stdin = child.0.stdin.take();
        let out = lines_of(child.0.stdout.take().expect("driver stdout"));
        let err = lines_of(child.0.stderr.take().expect("driver stderr"));
        Self { child, stdin, out, err, deadline: Instant::now() + timeout, printed: Vec::new() }
    }

    /// The next line the script prints (kept in `printed`), or `None` once it has ended or
    /// the time is up.
    pub(crate) fn next_line(&mut self) -> Option<String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let line = self.out.recv_timeout(left).ok()?;
        self.printed.push(line.clone());
        Some(line)
    }

    /// Hands the script its configuration line and closes its standard input.
    pub(crate) fn configure(&mut self, config: &serde_json::Value) {
        use std::io::Write as _;
        let mut stdin = self.stdin.take().expect("the configuration is sent once");
        writeln!(stdin, "{config}").expect("configuration to the driver");
    }

    /// Reads up to the `N passed, M failed` line (empty when none came) and waits for the
    /// script to exit.
    pub(crate) fn finish(&mut self) -> (String, std::process::ExitStatus) {
        let summary = loop {
            match self.next_line() {
                Some(line) if line.ends_with(" failed") && line.contains(" passed, ") => {
                    break line
                }
                Some(_) => continue,
                None => break String::new(),
            }
        };
        (summary, self.child.0.wait().expect("driver exit"))
    }

    /// What the script printed (without `token …` lines) and wrote to standard error, and
    /// `server_log`, for failure messages.
    pub(crate) fn report(&self, server_log: &str) -> String {
        format!(
            "{}\n--- driver stderr ---\n{}\n--- server stderr ---\n{server_log}",
            self.printed
                .iter()
                .filter(|l| !l.starts_with("token "))
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
            self.err.try_iter().collect::<Vec<_>>().join("\n"),
        )
    }
}

/// The number of passed checks in a summary line, `N passed, M failed`.
pub(crate) fn passed(summary: &str) -> usize {
    summary.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}
