//! `acs-identity serve` as an emulator: `--in-memory`, `--dev`, `--skip-api-version-check`,
//! `--output json` and `--ready-file`, each with the real binary.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{command, STARTUP_TIMEOUT};

/// The well-known development primary key, as the README publishes it.
const DEV_KEY: &str =
    "+B5wj9INx4oQes2m3YV56IiEFBzXwu+BetpR8pKaFp6tiBd/e5Nr2AFQtjjrCAz0OtaLfEm1LFUei2RFKgD5rg==";

/// A running `serve --output json`, with everything it printed on stdout.
struct Serve {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Option<thread::JoinHandle<()>>,
    stderr: Option<thread::JoinHandle<String>>,
    ready: Value,
    raw: String,
}

impl Serve {
    /// Starts a [`serve`] command and reads its one ready line.
    fn start(cmd: &mut Command) -> Serve {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start acs-identity serve");
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let Ok(raw) = lines.recv_timeout(STARTUP_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no ready line; stderr:\n{}", stderr.join().unwrap());
        };
        let ready: Value =
            serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{e}: not JSON: {raw}"));
        Serve { child, lines, stdout: Some(stdout), stderr: Some(stderr), ready, raw }
    }

    fn field(&self, name: &str) -> &str {
        self.ready[name].as_str().unwrap_or_else(|| panic!("no {name} in {}", self.raw))
    }

    /// A client command of the binary against this service.
    fn client(&self, args: &[&str]) -> Output {
        command()
            .env("COMMUNICATION_SERVICES_CONNECTION_STRING", self.field("connectionString"))
            .args(args)
            .arg("--ca-file")
            .arg(self.field("caFile"))
            .output()
            .expect("run acs-identity")
    }

    /// Sends SIGTERM, waits for a clean exit, and returns what else was printed on stdout
    /// and stderr.
    fn stop(mut self) -> (Vec<String>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(exit.success(), "{exit:?}\n{stderr}");
        self.stdout.take().unwrap().join().unwrap();
        (self.lines.try_iter().collect(), stderr)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `acs-identity serve --output json`, with a clean environment.
fn serve() -> Command {
    let mut cmd = command();
    cmd.args(["serve", "--output", "json"]);
    cmd
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn in_memory_prints_one_ready_line_writes_the_ready_file_and_leaves_no_trace() {
    let cwd = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let ready_file = elsewhere.path().join("ready.json");
    let serve = Serve::start(
        serve()
            .current_dir(cwd.path())
            .args(["--in-memory", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .arg("--ready-file")
            .arg(&ready_file),
    );
    let ready = &serve.ready;
    assert_eq!(ready["event"], "ready");
    assert_eq!(ready["pid"].as_u64(), Some(u64::from(serve.child.id())));
    let endpoint = serve.field("endpoint");
    assert!(endpoint.starts_with("https://127.0.0.1:") && !endpoint.ends_with(":0"), "{endpoint}");
    let http = serve.field("httpEndpoint");
    assert!(http.starts_with("http://127.0.0.1:") && !http.ends_with(":0"), "{http}");
    assert!(
        serve.field("connectionString").starts_with(&format!("endpoint={endpoint}/;accesskey=")),
        "{}",
        serve.raw
    );
    let ca = PathBuf::from(serve.field("caFile"));
    assert!(ca.is_absolute() && ca.is_file(), "{}", ca.display());
    assert!(!ca.starts_with(cwd.path()));
    assert_eq!(std::fs::read_to_string(&ready_file).unwrap(), format!("{}\n", serve.raw));

    // The line is enough to use the service.
    let created = serve.client(&["user", "create", "--scopes", "chat", "--output", "json"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let user: Value = serde_json::from_slice(&created.stdout).unwrap();
    assert!(user["id"].as_str().unwrap().starts_with("8:acs:"), "{user}");

    let (more, stderr) = serve.stop();
    assert!(more.is_empty(), "stdout carried more than the ready line: {more:?}");
    assert!(stderr.contains("serving"), "logs go to stderr:\n{stderr}");
    assert!(!stderr.contains('\x1b'), "no terminal colours in a pipe:\n{stderr}");
    assert_eq!(entries(cwd.path()), Vec::<PathBuf>::new(), "the working directory was written");
    assert!(!ca.parent().unwrap().parent().unwrap().exists(), "the CA's directory was kept");
    assert!(!ready_file.exists(), "the ready file outlived the service");
}

/// `GET <path>` over plain HTTP/1.1; returns the status and the body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// `serve --in-memory` on ephemeral HTTPS and HTTP ports, with `extra` flags.
fn serve_in_memory_over_http(extra: &[&str]) -> Serve {
    Serve::start(
        serve()
            .args(["--in-memory", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(extra),
    )
}

#[test]
fn metrics_flags_move_metrics_to_their_own_listener_or_turn_them_off() {
    let node = serve_in_memory_over_http(&["--metrics-listen", "127.0.0.1:0"]);
    // The ready line names the address bound, so a harness can ask for an ephemeral port.
    let metrics = node.field("metricsEndpoint").trim_start_matches("http://").to_owned();
    let (status, body) = http_get(&metrics, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("acsid_build_info{version=\""), "{body}");
    let api = node.field("httpEndpoint").trim_start_matches("http://").to_owned();
    let (status, body) = http_get(&api, "/metrics");
    assert_eq!(status, 404, "{body}");
    assert_eq!(http_get(&api, "/readyz").0, 200);
    node.stop();

    let node = serve_in_memory_over_http(&["--metrics", "false"]);
    let api = node.field("httpEndpoint").trim_start_matches("http://").to_owned();
    let (status, body) = http_get(&api, "/metrics");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"NotFound\""), "{body}");
    node.stop();

    let node = serve_in_memory_over_http(&[]);
    let api = node.field("httpEndpoint").trim_start_matches("http://").to_owned();
    let (status, body) = http_get(&api, "/metrics");
    assert_eq!(status, 200, "metrics are on by default: {body}");
    assert!(body.contains("# TYPE acsid_http_requests_total counter"), "{body}");
    node.stop();
}

#[test]
fn dev_serves_the_same_well_known_connection_string_every_time() {
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut strings = Vec::new();
    for args in [
        vec!["--dev", "--in-memory", "--listen", &listen],
        vec!["--dev", "--in-memory", "--listen", &listen],
        vec!["--dev", "--listen", &listen, "--data-dir", data.path().to_str().unwrap()],
    ] {
        let serve = Serve::start(serve().args(&args));
        strings.push(serve.field("connectionString").to_owned());
        let created = serve.client(&["user", "create", "--output", "json"]);
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        serve.stop();
    }
    let expected = format!("endpoint=https://127.0.0.1:{port}/;accesskey={DEV_KEY}");
    assert_eq!(strings, [expected.clone(), expected.clone(), expected]);
    // With a data directory, the development resource is kept there like any other.
    assert!(data.path().join("acs-identity.db").is_file());
}

#[test]
fn dev_refuses_non_loopback_listeners_with_exit_code_2() {
    let cwd = tempfile::tempdir().unwrap();
    for (args, env) in [
        (vec!["serve", "--dev", "--in-memory", "--listen", "0.0.0.0:0"], None),
        (
            vec![
                "serve",
                "--dev",
                "--in-memory",
                "--listen",
                "127.0.0.1:0",
                "--http-listen",
                "0.0.0.0:0",
            ],
            None,
        ),
        (vec!["serve", "--in-memory", "--listen", "0.0.0.0:0"], Some(("ACSID_DEV", "true"))),
    ] {
        let mut cmd = command();
        cmd.current_dir(cwd.path()).args(&args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("loopback") && stderr.contains("0.0.0.0:0"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    assert_eq!(entries(cwd.path()), Vec::<PathBuf>::new());
}

#[test]
fn dev_refuses_a_data_directory_of_another_resource() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    Serve::start(serve().args(["--listen", "127.0.0.1:0", "--data-dir", dir])).stop();
    let out =
        serve().args(["--dev", "--listen", "127.0.0.1:0", "--data-dir", dir]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not the development resource"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unknown_api_version_is_served_only_with_the_skip_flag() {
    let create = ["user", "create", "--api-version", "2099-01-01", "--output", "json"];
    let strict = Serve::start(serve().args(["--in-memory", "--listen", "127.0.0.1:0"]));
    let refused = strict.client(&create);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("UnsupportedApiVersion"), "{stderr}");
    strict.stop();

    // From the environment, as from the flag.
    for (flag, env) in [(true, None), (false, Some("true"))] {
        let mut cmd = serve();
        cmd.args(["--in-memory", "--listen", "127.0.0.1:0"]);
        if flag {
            cmd.arg("--skip-api-version-check");
        }
        if let Some(v) = env {
            cmd.env("ACSID_SKIP_API_VERSION_CHECK", v);
        }
        let lenient = Serve::start(&mut cmd);
        let served = lenient.client(&create);
        assert!(served.status.success(), "{}", String::from_utf8_lossy(&served.stderr));
        let user: Value = serde_json::from_slice(&served.stdout).unwrap();
        assert!(user["id"].as_str().unwrap().starts_with("8:acs:"));
        lenient.stop();
    }
}

#[test]
fn the_emulator_keys_come_from_a_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let config = dir.path().join("acs.toml");
    std::fs::write(
        &config,
        format!(
            "in_memory = true\ndev = true\nskip_api_version_check = true\nlisten = \"127.0.0.1:0\"\nready_file = {:?}\n",
            ready.to_str().unwrap()
        ),
    )
    .unwrap();
    let serve = Serve::start(serve().current_dir(dir.path()).arg("--config").arg(&config));
    assert!(serve.field("connectionString").ends_with(DEV_KEY));
    assert!(ready.is_file());
    let served = serve.client(&["user", "create", "--api-version", "2099-01-01"]);
    assert!(served.status.success(), "{}", String::from_utf8_lossy(&served.stderr));
    serve.stop();
    let mut left = entries(dir.path());
    left.sort();
    assert_eq!(left, [config]);
}
