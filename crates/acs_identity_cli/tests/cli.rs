//! The `acs-identity` binary's client commands against the binary's own `serve`.
//!
//! Each test starts `acs-identity serve` on a fresh data directory and a free loopback port,
//! then runs client commands with `--ca-file <data dir>/tls/ca.pem` and checks their stdout,
//! stderr and exit codes.
#![cfg(unix)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

use support::command;

/// A running `acs-identity serve`, killed when dropped.
struct Server {
    child: Child,
    endpoint: String,
    connection_string: String,
    data_dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        Self::start_with(&[])
    }

    /// Starts `serve` with extra flags.
    fn start_with(flags: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        let (child, banner) = support::spawn_serve(
            support::serve_command(data_dir.path()).args(flags).stderr(Stdio::null()),
        );
        let banner = banner.expect("serve prints its endpoint and connection string");
        let server = Server {
            child,
            endpoint: banner.endpoint,
            connection_string: banner.connection_string,
            data_dir,
        };
        assert!(server.endpoint.starts_with("https://127.0.0.1:"), "{}", server.endpoint);
        assert!(server.ca().is_file());
        server
    }

    fn ca(&self) -> PathBuf {
        self.data_dir.path().join("tls").join("ca.pem")
    }

    fn access_key(&self) -> &str {
        self.connection_string.split_once(";accesskey=").unwrap().1
    }

    /// A client command with the connection string in its environment and `--ca-file`.
    fn client(&self, args: &[&str]) -> Command {
        let mut cmd = command();
        cmd.env("COMMUNICATION_SERVICES_CONNECTION_STRING", &self.connection_string);
        cmd.args(args).arg("--ca-file").arg(self.ca());
        cmd
    }

    /// Runs a client command to completion.
    fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.client(args))
    }

    /// Runs a client command and returns its stdout as JSON; it must succeed.
    fn json(&self, args: &[&str]) -> Value {
        let run = self.run(args);
        run.assert_ok();
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
    }

    /// Creates a user and returns its id.
    fn create_user(&self) -> String {
        self.json(&["user", "create", "--output", "json"])["id"].as_str().unwrap().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A finished command.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(cmd: &mut Command) -> Run {
        let Output { status, stdout, stderr } = cmd.output().expect("run acs-identity");
        Run {
            code: status.code(),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }

    #[track_caller]
    fn assert_ok(&self) {
        assert_eq!(self.code, Some(0), "stdout: {}\nstderr: {}", self.stdout, self.stderr);
    }

    #[track_caller]
    fn assert_code(&self, code: i32) {
        assert_eq!(self.code, Some(code), "stdout: {}\nstderr: {}", self.stdout, self.stderr);
    }

    /// The value of a `label: value` row of a table.
    #[track_caller]
    fn row(&self, label: &str) -> &str {
        let prefix = format!("{label}:");
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no row {label:?} in\n{}", self.stdout))
    }
}

fn assert_user_id(id: &str) {
    assert!(id.starts_with("8:acs:") && id.len() == "8:acs:".len() + 36 + 1 + 36, "{id}");
}

// ---- users ----------------------------------------------------------------------------------

#[test]
fn user_create_prints_a_table_or_json() {
    let server = Server::start();
    let table = server.run(&["user", "create"]);
    table.assert_ok();
    assert_user_id(table.row("id"));
    assert_eq!(table.stdout.lines().count(), 1, "{}", table.stdout);

    let table = server.run(&["user", "create", "--scopes", "chat,voip", "--expires-in", "90"]);
    table.assert_ok();
    assert_user_id(table.row("id"));
    assert!(table.row("token").starts_with("eyJ"));
    assert!(table.row("expires on").ends_with("(in 1h 29m)"), "{}", table.stdout);

    let json = server.json(&["user", "create", "--scopes", "voip.join", "--output", "json"]);
    assert_user_id(json["id"].as_str().unwrap());
    assert!(json["token"].as_str().unwrap().starts_with("eyJ"));
    assert!(json["expiresOn"].as_str().unwrap().ends_with('Z'), "{json}");

    let plain = server.json(&["user", "create", "--output", "json"]);
    assert_eq!(plain.as_object().unwrap().len(), 1, "only the id: {plain}");
}

#[test]
fn custom_id_returns_the_same_user_and_show_reads_it() {
    let server = Server::start();
    let first =
        server.json(&["user", "create", "--custom-id", "alice@contoso.com", "--output", "json"]);
    let again =
        server.json(&["user", "create", "--custom-id", "alice@contoso.com", "--output", "json"]);
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["customId"], "alice@contoso.com");
    let id = first["id"].as_str().unwrap();

    let show = server.run(&["user", "show", id]);
    show.assert_ok();
    assert_eq!(show.row("id"), id);
    assert_eq!(show.row("custom id"), "alice@contoso.com");
    assert_eq!(show.row("last token issued"), "never");

    server.run(&["token", "issue", id, "--scopes", "chat"]).assert_ok();
    let show = server.json(&["user", "show", id, "--output", "json"]);
    assert!(show["lastTokenIssuedAt"].is_string(), "{show}");

    // An explicit --api-version wins: 2023-10-01 has no user details.
    let old = server.run(&["user", "show", id, "--api-version", "2023-10-01"]);
    old.assert_code(2);
    assert!(old.stderr.contains("2025-03-02-preview"), "{}", old.stderr);
}

#[test]
fn user_list_shows_users_newest_first_with_their_state() {
    let server = Server::start();
    let ids: Vec<String> = (0..5).map(|_| server.create_user()).collect();
    server.run(&["token", "revoke", &ids[1]]).assert_ok();
    server.run(&["user", "delete", &ids[2]]).assert_ok();
    let listed = server.json(&["user", "list", "--page-size", "2", "--output", "json"]);
    let listed = listed.as_array().unwrap();
    let order: Vec<&str> = listed.iter().map(|u| u["id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(order, newest_first);
    let state = |id: &str| listed.iter().find(|u| u["id"] == id).unwrap()["state"].clone();
    assert_eq!(state(&ids[0]), "active");
    assert_eq!(state(&ids[1]), "revoked");
    assert_eq!(state(&ids[2]), "deleted");
    let limited = server.json(&["user", "list", "--limit", "3", "--output", "json"]);
    assert_eq!(limited.as_array().unwrap().len(), 3);
    let table = server.run(&["user", "list"]);
    table.assert_ok();
    assert_eq!(table.row("users"), "5");
    assert!(table.row(&ids[2]).starts_with("deleted, created "), "{}", table.stdout);
}

#[test]
fn deleted_user_cannot_get_a_token() {
    let server = Server::start();
    let id = server.create_user();
    let delete = server.run(&["user", "delete", &id]);
    delete.assert_ok();
    assert_eq!(delete.row("deleted"), id);

    let issue = server.run(&["token", "issue", &id, "--scopes", "chat"]);
    issue.assert_code(2);
    assert_eq!(issue.stdout, "");
    assert_eq!(issue.stderr, "error: 404 IdentityNotFound: The identity has been deleted.\n");

    let foreign = "8:acs:11111111-2222-3333-4444-555555555555_00000000-0000-0000-0000-000000000001";
    let revoke = server.run(&["token", "revoke", foreign]);
    revoke.assert_code(2);
    assert_eq!(
        revoke.stderr,
        "error: 401 IdentityNotOwned: Provided identity doesn't belong to the resource.\n"
    );
}

// ---- tokens ---------------------------------------------------------------------------------

#[test]
fn token_issue_decode_verify_and_revoke() {
    let server = Server::start();
    let id = server.create_user();

    let table = server.run(&["token", "issue", &id, "--scopes", "chat,voip", "--expires-in", "60"]);
    table.assert_ok();
    let expires_on = table.row("expires on");
    assert!(expires_on.contains("(in 59m ") || expires_on.ends_with("(in 1h 0m)"), "{expires_on}");
    let issued = server.json(&["token", "issue", &id, "--scopes", "chat,voip", "--output", "json"]);
    assert_eq!(issued["id"], id.as_str());
    let token = issued["token"].as_str().unwrap().to_owned();

    // decode: offline, no connection string needed.
    let decode = Run::of(command().args(["token", "decode", &token]));
    decode.assert_ok();
    assert_eq!(decode.row("user"), id);
    assert_eq!(decode.row("scopes"), "chat, voip");
    assert!(decode.row("expires").contains("(expires in 23h 59m)"), "{}", decode.stdout);
    assert!(decode.stdout.contains("claim:     acsScope: chat,voip"), "{}", decode.stdout);
    assert!(decode.stdout.contains("header:    alg: ES256"), "{}", decode.stdout);
    let decoded: Value = serde_json::from_str(
        &Run::of(command().args(["token", "decode", &token, "--output", "json"])).stdout,
    )
    .unwrap();
    assert_eq!(decoded["claims"]["skypeid"], &id[2..]);
    assert_eq!(decoded["header"]["typ"], "JWT");
    assert_eq!(decoded["expired"], false);
    assert_eq!(decoded["scopes"], serde_json::json!(["chat", "voip"]));

    let bad = Run::of(command().args(["token", "decode", "not-a-token"]));
    bad.assert_code(2);
    assert!(bad.stderr.starts_with("error: not a JWT"), "{}", bad.stderr);

    // verify: the service's validation endpoint.
    let verify = server.run(&["token", "verify", &token]);
    verify.assert_ok();
    assert_eq!(verify.row("valid"), "yes");
    assert_eq!(verify.row("user"), id);
    assert_eq!(verify.row("scopes"), "chat, voip");

    let revoke = server.run(&["token", "revoke", &id]);
    revoke.assert_ok();
    assert_eq!(revoke.row("revoked all tokens of"), id);

    let verify = server.run(&["token", "verify", &token]);
    verify.assert_code(1);
    assert_eq!(verify.row("valid"), "no");
    assert_eq!(verify.row("reason"), "revoked");
    let verify = server.run(&["token", "verify", &token, "--output", "json"]);
    verify.assert_code(1);
    let verdict: Value = serde_json::from_str(&verify.stdout).unwrap();
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["reason"], "revoked");

    // A token issued after the revoke is valid; it can come from stdin.
    let fresh = server.json(&["token", "issue", &id, "--scopes", "chat", "--output", "json"]);
    let fresh = fresh["token"].as_str().unwrap();
    let mut child = server
        .client(&["token", "verify", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{fresh}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout).unwrap().contains("valid:      yes"));
}

#[test]
fn scopes_and_lifetimes_are_checked() {
    let server = Server::start();
    let id = server.create_user();
    let short = server.run(&["token", "issue", &id, "--scopes", "chat", "--expires-in", "59"]);
    short.assert_code(2);
    assert!(short.stderr.contains("60..=1440"), "{}", short.stderr);
    let missing = server.run(&["token", "issue", &id]);
    missing.assert_code(2);
    assert!(missing.stderr.contains("--scopes"), "{}", missing.stderr);
    let unknown = server.run(&["token", "issue", &id, "--scopes", "email"]);
    unknown.assert_code(2);
    assert!(unknown.stderr.starts_with("error: 400 ValidationError: "), "{}", unknown.stderr);
}

// ---- bulk creation --------------------------------------------------------------------------

#[test]
fn bulk_create_writes_one_json_line_per_user() {
    let server = Server::start();
    let run = server.run(&[
        "user",
        "create",
        "--count",
        "50",
        "--concurrency",
        "8",
        "--scopes",
        "chat",
        "--expires-in",
        "60",
    ]);
    run.assert_ok();
    let lines: Vec<Value> =
        run.stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 50);
    let ids: HashSet<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 50, "50 distinct users");
    let tokens: HashSet<&str> = lines.iter().map(|l| l["token"].as_str().unwrap()).collect();
    assert_eq!(tokens.len(), 50);
    assert!(lines.iter().all(|l| l["expiresOn"].is_string()));
    assert_eq!(run.stderr, "created 50 of 50\n", "no progress bar without a terminal");

    // --out writes the lines to a file; without scopes a line is just the id.
    let out = server.data_dir.path().join("users.jsonl");
    let run = server.run(&["user", "create", "--count", "7", "--out", out.to_str().unwrap()]);
    run.assert_ok();
    assert_eq!(run.stdout, "");
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 7);
    assert!(lines.iter().all(|l| l.as_object().unwrap().len() == 1 && l["id"].is_string()));
}

#[test]
fn bulk_create_stops_cleanly_on_ctrl_c() {
    let server = Server::start();
    let mut child = server
        .client(&["user", "create", "--count", "1000000", "--concurrency", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut line = String::new();
    while lines.len() < 20 {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "output ended early");
        lines.push(line.clone());
    }
    let status = Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        lines.push(line.clone());
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr, format!("created {} of 1000000\n", lines.len()));
    assert!(lines.len() < 1_000_000);
    for line in &lines {
        let user: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert_user_id(user["id"].as_str().unwrap());
    }
}

#[test]
fn bulk_create_stops_at_the_first_error() {
    let server = Server::start();
    let run = server.run(&["user", "create", "--count", "5", "--scopes", "email"]);
    run.assert_code(2);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.starts_with("created 0 of 5\nerror: 400 ValidationError: "),
        "{}",
        run.stderr
    );
}

// ---- keys, connection strings and TLS -------------------------------------------------------

#[test]
fn keys_list_prints_the_connection_string_the_server_printed() {
    let server = Server::start();
    // The server listens on port 0: keys list finds the port it bound in the data directory.
    let run = Run::of(
        command()
            .args(["keys", "list", "--output", "json", "--data-dir"])
            .arg(server.data_dir.path()),
    );
    run.assert_ok();
    let keys: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(keys["endpoint"], server.endpoint.as_str());
    assert_eq!(keys["keys"][0]["name"], "primary");
    assert_eq!(keys["keys"][0]["connectionString"], server.connection_string.as_str());
    assert_eq!(keys["keys"][0]["key"], server.access_key());
    let link = keys["keys"][0]["consoleLink"].as_str().unwrap();
    assert_eq!(link.split_once('#').unwrap().0, format!("{}/console/", server.endpoint));
    let fragment_key = link.split_once("#accesskey=").unwrap().1;
    let decoded = fragment_key.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
    assert_eq!(decoded, server.access_key());

    // The secondary key works too.
    let secondary = keys["keys"][1]["connectionString"].as_str().unwrap();
    let run = Run::of(
        command()
            .args(["user", "create", "--connection-string", secondary, "--ca-file"])
            .arg(server.ca()),
    );
    run.assert_ok();
}

#[test]
fn bad_connection_strings_are_named_without_the_key() {
    let server = Server::start();
    let key = server.access_key().to_owned();
    let not_base64 = format!("endpoint={}/;accesskey={key}!", server.endpoint);
    let bad_scheme = format!("endpoint=ftp://127.0.0.1/;accesskey={key}");
    for connection_string in [not_base64.as_str(), bad_scheme.as_str(), key.as_str()] {
        let run = Run::of(
            command()
                .args(["user", "create", "--ca-file"])
                .arg(server.ca())
                .env("COMMUNICATION_SERVICES_CONNECTION_STRING", connection_string),
        );
        run.assert_code(2);
        assert!(run.stderr.starts_with("error: invalid connection string: "), "{}", run.stderr);
        assert!(!run.stderr.contains(&key[..16]), "the key leaked: {}", run.stderr);
        assert_eq!(run.stdout, "");
    }

    let missing = Run::of(command().args(["user", "create"]));
    missing.assert_code(2);
    assert!(
        missing.stderr.contains("COMMUNICATION_SERVICES_CONNECTION_STRING"),
        "{}",
        missing.stderr
    );

    // A well-formed string with a wrong key: the service's 401, no key in sight.
    let wrong_key = format!(
        "endpoint={}/;accesskey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        server.endpoint
    );
    let run = Run::of(
        command()
            .args(["user", "create", "--connection-string", &wrong_key, "--ca-file"])
            .arg(server.ca()),
    );
    run.assert_code(2);
    assert_eq!(run.stderr, "error: 401 Denied: Denied by the resource provider.\n");

    // Help shows that the variable is read, never its value.
    let help = server.run(&["user", "create", "--help"]);
    help.assert_ok();
    assert!(help.stdout.contains("COMMUNICATION_SERVICES_CONNECTION_STRING"), "{}", help.stdout);
    assert!(!help.stdout.contains(&key[..16]), "{}", help.stdout);
}

#[test]
fn the_development_ca_is_found_from_the_environment_or_the_error_says_how() {
    let server = Server::start();
    for var in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"] {
        let run = Run::of(
            command()
                .args(["user", "create"])
                .env("COMMUNICATION_SERVICES_CONNECTION_STRING", &server.connection_string)
                .env(var, server.ca()),
        );
        run.assert_ok();
        assert_user_id(run.row("id"));
    }
    let run = Run::of(
        command()
            .args(["user", "create"])
            .env("COMMUNICATION_SERVICES_CONNECTION_STRING", &server.connection_string),
    );
    run.assert_code(2);
    assert!(run.stderr.contains("--ca-file"), "{}", run.stderr);
    assert!(run.stderr.contains("not trusted"), "{}", run.stderr);

    let missing = Path::new("/nonexistent/ca.pem");
    let run = Run::of(
        command()
            .args(["user", "create", "--ca-file"])
            .arg(missing)
            .env("COMMUNICATION_SERVICES_CONNECTION_STRING", &server.connection_string),
    );
    run.assert_code(2);
    assert!(run.stderr.contains("cannot read the CA file /nonexistent/ca.pem"), "{}", run.stderr);
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = Run::of(command().args(["completions", shell]));
        run.assert_ok();
        assert!(run.stdout.contains("acs-identity"), "{shell}");
        assert!(run.stdout.contains("verify"), "{shell}: token verify is completed");
    }
    let run = Run::of(command().args(["completions", "tcsh"]));
    run.assert_code(2);
}

#[test]
fn keys_regenerate_and_signing_keys_rotate_on_a_running_service() {
    let server = Server::start();
    let id = server.create_user();
    let old_token = server.json(&["token", "issue", &id, "--scopes", "chat", "--output", "json"])
        ["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The key commands write to the audit log file too, though they bypass the service.
    let audit = server.data_dir.path().join("admin-audit.jsonl");
    let run = Run::of(
        command()
            .args(["keys", "regenerate", "primary", "--data-dir"])
            .arg(server.data_dir.path())
            .env("ACSID_AUDIT_LOG", &audit),
    );
    run.assert_ok();
    let fresh = run.stdout.trim().to_owned();
    assert!(fresh.starts_with(&format!("endpoint={}/;accesskey=", server.endpoint)), "{fresh}");
    assert_ne!(fresh, server.connection_string);
    assert!(!run.stdout.contains(server.access_key()));

    // Within a second the old key is refused and the new one works.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let old = server.run(&["user", "create", "--output", "json"]);
        if old.code == Some(2) {
            assert!(old.stderr.contains("401"), "{}", old.stderr);
            break;
        }
        assert!(Instant::now() < deadline, "the old key still works");
        thread::sleep(Duration::from_millis(100));
    }
    let mut with_new = command();
    with_new
        .env("COMMUNICATION_SERVICES_CONNECTION_STRING", &fresh)
        .args(["user", "create"])
        .arg("--ca-file")
        .arg(server.ca());
    Run::of(&mut with_new).assert_ok();
    // The token asked for with the old key no longer validates.
    let mut verify = command();
    verify
        .env("COMMUNICATION_SERVICES_CONNECTION_STRING", &fresh)
        .args(["token", "verify", &old_token])
        .arg("--ca-file")
        .arg(server.ca());
    let run = Run::of(&mut verify);
    run.assert_code(1);

    let run = Run::of(
        command()
            .args(["signing-keys", "rotate", "--data-dir"])
            .arg(server.data_dir.path())
            .env("ACSID_AUDIT_LOG", &audit),
    );
    run.assert_ok();
    assert!(run.stdout.contains("ES256"), "{}", run.stdout);
    let kid = run.stdout.trim().rsplit(' ').next().unwrap().to_owned();

    let log = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert_eq!(lines[0]["operation"], "access_key.regenerate");
    assert_eq!(lines[0]["target"], "primary");
    assert_eq!(lines[1]["operation"], "signing_key.rotate");
    assert_eq!(lines[1]["target"], kid.as_str());
    for line in &lines {
        assert!(line["who"].as_str().unwrap().starts_with("cli"), "{line}");
        assert_eq!(line["status"], 200);
    }
    let new_key = fresh.split_once("accesskey=").unwrap().1;
    assert!(!log.contains(new_key) && !log.contains(server.access_key()), "a key leaked: {log}");

    // An audit log that cannot be opened stops the change before it is made.
    let keys = || {
        let run = Run::of(
            command()
                .args(["keys", "list", "--output", "json", "--data-dir"])
                .arg(server.data_dir.path()),
        );
        run.assert_ok();
        run.stdout
    };
    let before = keys();
    let run = Run::of(
        command()
            .args(["keys", "regenerate", "secondary", "--data-dir"])
            .arg(server.data_dir.path())
            .env("ACSID_AUDIT_LOG", "/nonexistent/dir/audit.jsonl"),
    );
    run.assert_code(2);
    assert!(run.stderr.contains("cannot open the audit log"), "{}", run.stderr);
    assert_eq!(keys(), before);
}

// ---- Entra: Teams user exchange and assignments ----------------------------------------------

#[test]
fn token_exchange_teams_and_assignment_commands() {
    use acs_identity_testkit::{jwt_payload, uuid_like, TestIssuer};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let issuer = runtime.block_on(TestIssuer::start());
    let trust = format!("{}={}", issuer.issuer(), issuer.jwks_file().display());
    let server = Server::start_with(&["--trust-issuer", &trust]);
    let tenant = issuer.tenant_id().to_owned();
    let (oid, app) = (uuid_like(), uuid_like());

    // token exchange-teams
    let teams = issuer.teams_token(&oid, &app, "Teams.ManageCalls");
    let exchange = |user: &str, output: &str| {
        let args =
            ["token", "exchange-teams", "--token", &teams, "--app-id", &app, "--user-id", user];
        server.run(&[&args[..], &["--output", output]].concat())
    };
    let exchanged = exchange(&oid, "json");
    exchanged.assert_ok();
    let exchanged: Value = serde_json::from_str(&exchanged.stdout).unwrap();
    let token = exchanged["token"].as_str().unwrap();
    assert_eq!(jwt_payload(token)["skypeid"], format!("orgid:{oid}"));
    let wrong = exchange(&uuid_like(), "table");
    wrong.assert_code(2);
    assert!(wrong.stderr.starts_with("error: 400 ValidationError: "), "{}", wrong.stderr);
    assert!(!wrong.stderr.contains(&teams), "the token is not echoed");

    // assignment teams-extension set / show / delete
    let set = server.json(&[
        "assignment",
        "teams-extension",
        "set",
        &tenant,
        &oid,
        "--principal-type",
        "resourceAccount",
        "--client-ids",
        &app,
        "--output",
        "json",
    ]);
    assert_eq!(set["principalType"], "resourceAccount");
    assert_eq!(set["clientIds"], serde_json::json!([app]));
    let show = server.run(&["assignment", "teams-extension", "show", &tenant, &oid]);
    show.assert_ok();
    assert_eq!(show.row("principal type"), "resourceAccount");
    assert_eq!(show.row("client ids"), app);
    server.run(&["assignment", "teams-extension", "delete", &tenant, &oid]).assert_ok();
    let gone = server.run(&["assignment", "teams-extension", "show", &tenant, &oid]);
    gone.assert_code(2);
    assert!(gone.stderr.starts_with("error: 404 NotFound: "), "{}", gone.stderr);

    // assignment entra set / list / apply / show / delete
    let mut ids: Vec<String> = (0..3).map(|_| uuid_like()).collect();
    for id in &ids {
        let set = server.run(&[
            "assignment",
            "entra",
            "set",
            id,
            "--tenant-id",
            &tenant,
            "--principal-type",
            "user",
            "--client-ids",
            &app,
        ]);
        set.assert_ok();
        assert_eq!(set.row("object id"), id);
    }
    ids.sort();
    let listed =
        server.json(&["assignment", "entra", "list", "--page-size", "2", "--output", "json"]);
    let listed: Vec<&str> =
        listed.as_array().unwrap().iter().map(|a| a["objectId"].as_str().unwrap()).collect();
    assert_eq!(listed, ids);

    let added = uuid_like();
    let changes = serde_json::json!({
        added.clone(): {"tenantId": tenant, "principalType": "group", "clientIds": [app]},
        ids[0].clone(): null,
    });
    let file = server.data_dir.path().join("changes.json");
    std::fs::write(&file, changes.to_string()).unwrap();
    let apply = server.run(&["assignment", "entra", "apply", file.to_str().unwrap()]);
    apply.assert_ok();
    assert_eq!(apply.row("created or replaced"), "1");
    assert_eq!(apply.row("removed"), "1");
    let group = server.json(&["assignment", "entra", "show", &added, "--output", "json"]);
    assert_eq!(group["principalType"], "group");
    let removed = server.run(&["assignment", "entra", "show", &ids[0]]);
    removed.assert_code(2);
    server.run(&["assignment", "entra", "delete", &added]).assert_ok();
    let list = server.run(&["assignment", "entra", "list"]);
    list.assert_ok();
    assert_eq!(list.row("assignments"), "2");

    // A bad change file fails before any request and names the problem.
    std::fs::write(&file, r#"{"x": 1}"#).unwrap();
    let bad = server.run(&["assignment", "entra", "apply", file.to_str().unwrap()]);
    bad.assert_code(2);
    assert!(bad.stderr.contains("x: expected an assignment object or null"), "{}", bad.stderr);
    drop(runtime);
}

// ---- Key changes that take effect at once; naming the store -----------------------------------

/// `POST /identities` signed with `key` over HTTPS; the status.
async fn create_signed(http: &reqwest::Client, endpoint: &str, key: &[u8]) -> reqwest::StatusCode {
    use acs_identity_core::hmac::{
        authorization_header, content_hash, string_to_sign, AccessKey, KeyName,
    };
    use acs_identity_core::Clock as _;
    let path = "/identities?api-version=2023-10-01";
    let date = acs_identity_core::time_format::http_date(acs_identity_core::SystemClock.now());
    let host = endpoint.trim_start_matches("https://");
    let hash = content_hash(b"");
    let signature = AccessKey::new(KeyName::Primary, key)
        .sign(&string_to_sign("POST", path, &date, host, &hash));
    http.post(format!("{endpoint}{path}"))
        .header("x-ms-date", date)
        .header("x-ms-content-sha256", hash)
        .header("authorization", authorization_header(&signature))
        .send()
        .await
        .expect("the service answers")
        .status()
}

fn decode_key(connection_string: &str) -> Vec<u8> {
    use base64::Engine as _;
    let key = connection_string.trim().split_once(";accesskey=").expect("a connection string").1;
    base64::engine::general_purpose::STANDARD.decode(key).unwrap()
}

/// Regenerations, each followed at once by a request with the old key and one with the new.
const REGENERATIONS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regenerated_key_is_refused_as_soon_as_the_command_returns() {
    let server = Server::start();
    let ca = std::fs::read(server.ca()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let mut old = decode_key(&server.connection_string);
    assert_eq!(create_signed(&http, &server.endpoint, &old).await, reqwest::StatusCode::CREATED);
    for trial in 0..REGENERATIONS {
        let run = Run::of(
            command()
                .args(["keys", "regenerate", "primary", "--data-dir"])
                .arg(server.data_dir.path()),
        );
        run.assert_ok();
        let fresh = decode_key(&run.stdout);
        let status = create_signed(&http, &server.endpoint, &old).await;
        assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED, "trial {trial}: the old key worked");
        let status = create_signed(&http, &server.endpoint, &fresh).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "trial {trial}: the new key did not");
        old = fresh;
    }
}

#[test]
fn serve_shows_the_key_only_on_a_terminal_or_when_asked() {
    let data_dir = tempfile::tempdir().unwrap();
    let banner_file = data_dir.path().join("banner.txt");
    let mut child = command()
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::fs::File::create(&banner_file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + support::STARTUP_TIMEOUT;
    let banner = loop {
        let text = std::fs::read_to_string(&banner_file).unwrap_or_default();
        if text.contains("keys list") {
            // The banner is written in one piece.
            break text;
        }
        assert!(Instant::now() < deadline, "no banner: {text}");
        thread::sleep(Duration::from_millis(50));
    };
    let keys = Run::of(
        command().args(["keys", "list", "--output", "json", "--data-dir"]).arg(data_dir.path()),
    );
    keys.assert_ok();
    let _ = child.kill();
    let _ = child.wait();
    let keys: Value = serde_json::from_str(&keys.stdout).unwrap();
    for k in keys["keys"].as_array().unwrap() {
        let key = k["key"].as_str().unwrap();
        assert!(!banner.contains(key), "the key is in the banner:\n{banner}");
        let escaped = key.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        assert!(!banner.contains(&escaped), "the key is in the banner:\n{banner}");
    }
    assert!(!banner.contains("accesskey="), "{banner}");
    assert!(banner.contains("acs-identity is serving at https://127.0.0.1:"), "{banner}");
    let hint = format!("acs-identity keys list --data-dir {}", data_dir.path().display());
    assert!(banner.contains(&hint), "{banner}");

    // A harness asks for it; so does --dev (its key is public).
    let server = Server::start();
    assert!(server.connection_string.contains(";accesskey="));
    let dev = Server::start_with(&["--dev"]);
    assert!(dev.connection_string.ends_with(
        "accesskey=+B5wj9INx4oQes2m3YV56IiEFBzXwu+BetpR8pKaFp6tiBd/e5Nr2AFQtjjrCAz0OtaLfEm1LFUei2RFKgD5rg=="
    ));
}

/// `keys list --output json` with `args` and `env`: the resource id, or the failure.
fn resource_of(args: &[&str], env: &[(&str, &Path)]) -> Result<String, String> {
    let mut cmd = command();
    cmd.args(["keys", "list", "--output", "json"]).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = Run::of(&mut cmd);
    if run.code != Some(0) {
        return Err(run.stderr);
    }
    let keys: Value = serde_json::from_str(&run.stdout).unwrap();
    Ok(keys["resourceId"].as_str().unwrap().to_owned())
}

#[test]
fn every_store_command_takes_data_dir_and_database_url() {
    let server = Server::start();
    let dir = server.data_dir.path();
    let dir_arg = dir.to_str().unwrap();
    let db = dir.join("acs-identity.db");
    let url = format!("sqlite:{}", db.display());
    let resource = resource_of(&["--data-dir", dir_arg], &[]).unwrap();
    let scratch = tempfile::tempdir().unwrap();

    for store in [["--data-dir", dir_arg], ["--database-url", url.as_str()]] {
        assert_eq!(resource_of(&store, &[]).unwrap(), resource);
        let run = Run::of(command().args(["keys", "regenerate", "secondary"]).args(store));
        run.assert_ok();
        assert!(run.stdout.contains(";accesskey="), "{}", run.stdout);
        let run = Run::of(command().args(["signing-keys", "rotate"]).args(store));
        run.assert_ok();
        assert!(run.stdout.contains("signing key"), "{}", run.stdout);
        let run = Run::of(command().arg("migrate").args(store));
        run.assert_ok();
        assert!(run.stdout.contains(&db.display().to_string()), "{}", run.stdout);
        let dump = scratch.path().join(format!("dump-{}.jsonl", store[0].trim_start_matches('-')));
        let run = Run::of(command().arg("export").args(store).arg("--output").arg(&dump));
        run.assert_ok();
        // Imported into a new store named the same way, it is the same resource.
        let target = scratch.path().join(format!("to-{}", store[0].trim_start_matches('-')));
        let target_store: [String; 2] = match store[0] {
            "--data-dir" => ["--data-dir".into(), target.display().to_string()],
            _ => ["--database-url".into(), format!("sqlite:{}", target.join("a.db").display())],
        };
        let run = Run::of(command().arg("import").args(&target_store).arg("--input").arg(&dump));
        run.assert_ok();
        let target_store: Vec<&str> = target_store.iter().map(String::as_str).collect();
        assert_eq!(resource_of(&target_store, &[]).unwrap(), resource);
    }

    // Flag over environment over configuration file.
    let empty = tempfile::tempdir().unwrap();
    let nowhere = empty.path().join("nowhere");
    let config = empty.path().join("config.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n", nowhere.display().to_string())).unwrap();
    let config_env = [("ACSID_CONFIG", config.as_path())];
    assert!(resource_of(&[], &config_env).unwrap_err().contains("nowhere"));
    assert_eq!(
        resource_of(&[], &[("ACSID_CONFIG", &config), ("ACSID_DATA_DIR", dir)]).unwrap(),
        resource
    );
    assert_eq!(
        resource_of(&["--data-dir", dir_arg], &[("ACSID_DATA_DIR", &nowhere)]).unwrap(),
        resource
    );
    let elsewhere = format!("sqlite:{}", nowhere.join("x.db").display());
    let mut cmd = command();
    cmd.args(["keys", "list", "--output", "json", "--database-url", &url])
        .env("ACSID_DATABASE_URL", &elsewhere);
    Run::of(&mut cmd).assert_ok();
    let mut cmd = command();
    cmd.args(["keys", "list"]).env("ACSID_DATABASE_URL", &url);
    let run = Run::of(&mut cmd);
    run.assert_ok();
    assert!(run.stdout.contains(&resource), "{}", run.stdout);
}
