//! The real binary on PostgreSQL: a node killed with SIGKILL loses nothing it
//! acknowledged, and `export` / `import` move a resource from SQLite to PostgreSQL.
//!
//! Each test uses a fresh database on the server named by `DATABASE_URL` (dropped
//! afterwards). Every test here needs a PostgreSQL server: without `DATABASE_URL` they fail
//! (see `acs_identity_store::testing`); `cargo xtask test` reports them as skipped when no
//! server is reachable.
#![cfg(unix)]

mod support;

use acs_identity_core::clock::Clock as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acs_identity_core::hmac::{
    authorization_header, content_hash, string_to_sign, AccessKey, KeyName,
};
use acs_identity_core::store::{EntraAssignment, TeamsExtensionAssignment};
use acs_identity_core::time_format::http_date;
use acs_identity_core::SystemClock;
use acs_identity_store::testing::with_fresh_database;
use acs_identity_store::{AnyStore, StoreLocation};
use acs_identity_testkit::{issue_path, revoke_path, TestServer};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use support::STARTUP_TIMEOUT;

/// `acs-identity` with a clean environment ([`support::command`]), killed when dropped.
fn binary() -> Command {
    let mut cmd = Command::from(support::command());
    cmd.kill_on_drop(true);
    cmd
}

/// A running `acs-identity serve` child process, reached over plain HTTP.
struct Node {
    child: Child,
    http: String,
    resource: String,
    key: Vec<u8>,
    client: reqwest::Client,
    _data_dir: tempfile::TempDir,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        let data_dir = tempfile::tempdir().unwrap();
        let mut child = binary()
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(["--database-url", database_url, "--print-connection-string"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start acs-identity serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut http, mut resource, mut key) = (None, None, None);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while http.is_none() || resource.is_none() || key.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = tokio::time::timeout(left, lines.next_line())
                .await
                .expect("the banner in time")
                .unwrap()
                .expect("acs-identity serve printed its banner");
            let line = line.trim();
            if let Some(h) = line.strip_prefix("plain HTTP at ") {
                http = Some(h.to_owned());
            } else if let Some(r) = line.strip_prefix("resource id: ") {
                resource = Some(r.to_owned());
            } else if let Some((_, k)) = line.split_once(";accesskey=") {
                key = Some(STANDARD.decode(k).unwrap());
            }
        }
        // Keep draining stdout so the child never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Node {
            child,
            http: http.unwrap(),
            resource: resource.unwrap(),
            key: key.unwrap(),
            client: reqwest::Client::new(),
            _data_dir: data_dir,
        }
    }

    /// Sends a request signed like the SDKs sign it; `None` when the connection fails.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<(StatusCode, Value)> {
        self.send_with(&self.key, method, path, body).await
    }

    /// [`Node::send`], signed with `key`.
    async fn send_with(
        &self,
        key: &[u8],
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<(StatusCode, Value)> {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        let host = self.http.trim_start_matches("http://");
        let date = http_date(SystemClock.now());
        let hash = content_hash(&body);
        let signature = AccessKey::new(KeyName::Primary, key).sign(&string_to_sign(
            method.as_str(),
            path,
            &date,
            host,
            &hash,
        ));
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.http))
            .header("x-ms-date", date)
            .header("x-ms-content-sha256", hash)
            .header("authorization", authorization_header(&signature));
        if !body.is_empty() {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.send().await.ok()?;
        let status = response.status();
        let json = serde_json::from_slice(&response.bytes().await.ok()?).unwrap_or(Value::Null);
        Some((status, json))
    }
}

/// An in-process node on `url`, to check what the database holds.
async fn checker(url: &str) -> TestServer {
    TestServer::start_on_database(url).await
}

/// An in-process SQLite node keeping its data in `dir`.
async fn in_dir(dir: &Path) -> TestServer {
    let dir = dir.to_path_buf();
    TestServer::start_with(move |c| c.data_dir = dir, Arc::new(SystemClock)).await
}

#[derive(Debug, Default)]
struct Acknowledged {
    created: Vec<String>,
    revoked: Vec<(String, String)>,
}

/// Creates users, issues tokens and revokes them until the node stops answering.
async fn load(node: Arc<Node>, killed: Arc<AtomicBool>, acked: Arc<Mutex<Acknowledged>>) {
    let mut user: Option<String> = None;
    let mut token: Option<String> = None;
    loop {
        let sent = match (&user, &token) {
            (None, _) => node.send(Method::POST, "/identities?api-version=2023-10-01", None).await,
            (Some(u), None) => {
                node.send(Method::POST, &issue_path(u), Some(json!({"scopes": ["chat"]}))).await
            }
            (Some(u), Some(_)) => node.send(Method::POST, &revoke_path(u), None).await,
        };
        let Some((status, body)) = sent else {
            assert!(killed.load(Ordering::SeqCst), "the node stopped answering before the kill");
            return;
        };
        let mut acked = acked.lock().unwrap();
        match status {
            StatusCode::CREATED => {
                let id = body["identity"]["id"].as_str().unwrap().to_owned();
                acked.created.push(id.clone());
                user = Some(id);
            }
            StatusCode::OK => token = Some(body["token"].as_str().unwrap().to_owned()),
            StatusCode::NO_CONTENT => {
                acked.revoked.push((user.clone().unwrap(), token.take().unwrap()));
                if acked.revoked.len().is_multiple_of(3) {
                    user = None;
                }
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_with_sigkill_loses_nothing_acknowledged() {
    with_fresh_database(
        "a_node_killed_with_sigkill_loses_nothing_acknowledged",
        |url| async move {
            let node = Arc::new(Node::start(&url).await);
            let killed = Arc::new(AtomicBool::new(false));
            let acked = Arc::new(Mutex::new(Acknowledged::default()));
            let writers: Vec<_> = (0..4)
                .map(|_| tokio::spawn(load(node.clone(), killed.clone(), acked.clone())))
                .collect();
            tokio::time::sleep(Duration::from_millis(2000)).await;
            killed.store(true, Ordering::SeqCst);
            let pid = node.child.id().expect("running");
            let status =
                std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            assert!(status.is_ok_and(|s| s.success()), "kill -KILL {pid}");
            for w in writers {
                w.await.expect("writer");
            }
            let acked = std::mem::take(&mut *acked.lock().unwrap());
            assert!(acked.created.len() >= 10, "load ran: {} users", acked.created.len());
            eprintln!(
                "acknowledged before SIGKILL: {} creates, {} revokes",
                acked.created.len(),
                acked.revoked.len()
            );

            let check = checker(&url).await;
            assert_eq!(check.resource_id(), node.resource);
            check.assert_kept(&acked.created, &acked.revoked).await;
            check.shutdown().await;

            // The binary starts again on the same database, as the same resource.
            let again = Node::start(&url).await;
            assert_eq!(again.resource, node.resource);
            assert_eq!(again.key, node.key);
            let (status, _) = again.send(Method::GET, "/healthz", None).await.unwrap();
            assert_eq!(status, StatusCode::OK);
        },
    )
    .await;
}

/// Runs `acs-identity <args>` with `stdin`; returns (success, stdout, stderr).
async fn run(args: &[&str], stdin: Option<&Path>) -> (bool, Vec<u8>, String) {
    let mut cmd = binary();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    match stdin {
        Some(path) => cmd.stdin(std::fs::File::open(path).unwrap()),
        None => cmd.stdin(Stdio::null()),
    };
    let out = cmd.output().await.expect("run acs-identity");
    (out.status.success(), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// What the SQLite node had before the move.
struct Before {
    valid: Vec<(String, String)>,
    revoked: Vec<String>,
    deleted: Vec<String>,
    custom: Vec<(String, String)>,
}

async fn populate(s: &TestServer) -> Before {
    let mut before = Before { valid: vec![], revoked: vec![], deleted: vec![], custom: vec![] };
    for i in 0..30 {
        let custom = format!("person-{i}@example.com");
        let r = s.create_user_with_custom_id(&custom).await;
        let id = r.json["identity"]["id"].as_str().unwrap().to_owned();
        let token = r.json["accessToken"]["token"].as_str().unwrap().to_owned();
        match i % 3 {
            0 => before.valid.push((id.clone(), token)),
            1 => {
                s.revoke(&id).await;
                before.revoked.push(token);
                // Issued after the revoke: stays valid after the move.
                before.valid.push((id.clone(), s.issue_token(&id).await));
            }
            _ => {
                s.delete(&id).await;
                before.deleted.push(token);
                continue;
            }
        }
        before.custom.push((custom, id));
    }
    before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_move_a_resource_from_sqlite_to_postgres() {
    with_fresh_database(
        "export_and_import_move_a_resource_from_sqlite_to_postgres",
        |url| async move {
            let work = tempfile::tempdir().unwrap();
            // The test kit removes its own data directory on shutdown: keep the data in ours.
            let data_dir: PathBuf = work.path().join("sqlite-node");
            let sqlite = in_dir(&data_dir).await;
            let resource = sqlite.resource_id();
            let primary = sqlite.key(KeyName::Primary);
            let before = populate(&sqlite).await;
            sqlite.shutdown().await;
            // Assignments live in the database too.
            let db = StoreLocation::Sqlite(data_dir.join("acs-identity.db"));
            let store = AnyStore::open(&db).await.unwrap();
            let teams = TeamsExtensionAssignment {
                tenant_id: "6a0e1d0c-0000-4000-8000-000000000001".to_owned(),
                object_id: "0b000000-0000-4000-8000-000000000002".to_owned(),
                principal_type: "user".to_owned(),
                client_ids: Some(vec!["app".to_owned()]),
            };
            let entra = EntraAssignment {
                object_id: "0c000000-0000-4000-8000-000000000003".to_owned(),
                tenant_id: teams.tenant_id.clone(),
                principal_type: "group".to_owned(),
                client_ids: vec!["app".to_owned()],
            };
            store.shared().put_teams_extension_assignment(teams.clone()).await.unwrap();
            store
                .shared()
                .update_entra_assignments(vec![(entra.object_id.clone(), Some(entra.clone()))])
                .await
                .unwrap();
            store.close().await;

            // export --data-dir DIR > dump.jsonl
            let dir = data_dir.display().to_string();
            let (ok, stdout, stderr) = run(&["export", "--data-dir", &dir], None).await;
            assert!(ok, "export failed: {stderr}");
            assert!(stderr.contains("keep it secret"), "{stderr}");
            let dump = work.path().join("dump.jsonl");
            std::fs::write(&dump, &stdout).unwrap();
            let text = String::from_utf8(stdout).unwrap();
            let lines: Vec<Value> =
                text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            assert_eq!(lines.first().unwrap()["kind"], "header");
            let end = lines.last().unwrap();
            assert_eq!(end["kind"], "end");
            assert_eq!(end["identities"], 30);
            assert_eq!(end["deletedIdentities"], 10);

            // import --database-url URL < dump.jsonl, twice: the second changes nothing.
            for _ in 0..2 {
                let (ok, _, stderr) = run(&["import", "--database-url", &url], Some(&dump)).await;
                assert!(ok, "import failed: {stderr}");
                assert!(stderr.contains(&format!("imported resource {resource}")), "{stderr}");
            }

            let pg = checker(&url).await;
            assert_eq!(pg.resource_id(), resource, "the same resource");
            assert_eq!(pg.key(KeyName::Primary), primary, "the same access keys");
            for (id, token) in &before.valid {
                let v = pg.validate(token).await;
                assert_eq!(v["valid"], true, "{v}");
                assert_eq!(v["identity"]["id"], id.as_str());
            }
            for token in &before.revoked {
                assert_eq!(pg.validate(token).await["reason"], "revoked");
            }
            for token in &before.deleted {
                assert_eq!(pg.validate(token).await["reason"], "deleted");
            }
            for (custom, id) in &before.custom {
                let r = pg
                    .post("/identities?api-version=2025-03-02-preview", json!({"customId": custom}))
                    .await;
                assert_eq!(r.json["identity"]["id"], id.as_str(), "custom id {custom}");
            }
            let shared = pg.inner().state().store();
            assert_eq!(shared.count_identities().await.unwrap(), 30);
            assert_eq!(
                shared
                    .get_teams_extension_assignment(&teams.tenant_id, &teams.object_id)
                    .await
                    .unwrap(),
                Some(teams)
            );
            assert_eq!(shared.get_entra_assignment(&entra.object_id).await.unwrap(), Some(entra));
            pg.shutdown().await;

            // Another resource's database is refused, and left as it was.
            let other_dir = work.path().join("other-node");
            let other = in_dir(&other_dir).await;
            let other_resource = other.resource_id();
            other.shutdown().await;
            let to = format!("sqlite:{}", other_dir.join("acs-identity.db").display());
            let (ok, _, stderr) = run(&["import", "--to", &to], Some(&dump)).await;
            assert!(!ok, "imported over another resource");
            assert!(stderr.contains("refusing to import"), "{stderr}");
            let store = AnyStore::open(&StoreLocation::Sqlite(other_dir.join("acs-identity.db")))
                .await
                .unwrap();
            let state = store.shared().load_resource().await.unwrap().unwrap();
            assert_eq!(state.resource.resource_id.to_string(), other_resource);
            assert_eq!(store.shared().count_identities().await.unwrap(), 0);
            store.close().await;

            // A truncated dump is noticed.
            let truncated = work.path().join("truncated.jsonl");
            let cut: Vec<&str> = text.lines().take(lines.len() - 5).collect();
            std::fs::write(&truncated, cut.join("\n")).unwrap();
            let fresh = work.path().join("fresh.db");
            let to = format!("sqlite:{}", fresh.display());
            let (ok, _, stderr) = run(&["import", "--to", &to], Some(&truncated)).await;
            assert!(!ok);
            assert!(stderr.contains("truncated"), "{stderr}");

            // `--from` reads a database by URL, `--output` writes a private file.
            let from = format!("sqlite:{}", data_dir.join("acs-identity.db").display());
            let out = work.path().join("again.jsonl");
            let out_arg = out.display().to_string();
            let (ok, _, stderr) =
                run(&["export", "--from", &from, "--output", &out_arg], None).await;
            assert!(ok, "{stderr}");
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
            let again = std::fs::read_to_string(&out).unwrap();
            // Same content apart from the header's export time.
            assert_eq!(
                again.lines().skip(1).collect::<Vec<_>>(),
                text.lines().skip(1).collect::<Vec<_>>()
            );
        },
    )
    .await;
}

#[tokio::test]
async fn migrate_reports_the_schema_version() {
    with_fresh_database("migrate_reports_the_schema_version", |url| async move {
        let (ok, stdout, stderr) = run(&["migrate", "--database-url", &url], None).await;
        assert!(ok, "{stderr}");
        let out = String::from_utf8(stdout).unwrap();
        let known = AnyStore::open(&StoreLocation::Postgres(url.clone().into()))
            .await
            .unwrap()
            .known_schema_version();
        assert!(out.contains(&format!("schema version {known}")), "{out}");
        // Applying again is a no-op.
        let (ok, stdout, _) = run(&["migrate", "--database-url", &url], None).await;
        assert!(ok);
        assert_eq!(String::from_utf8(stdout).unwrap(), out);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_list_takes_database_url_and_it_wins_over_the_environment() {
    with_fresh_database("keys_list_takes_database_url", |url| async move {
        let node = Node::start(&url).await;
        let other = tempfile::tempdir().unwrap();
        let mut cmd = binary();
        cmd.args(["keys", "list", "--output", "json", "--database-url", &url])
            .env("ACSID_DATABASE_URL", format!("sqlite:{}", other.path().join("x.db").display()))
            .stdin(Stdio::null());
        let out = cmd.output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(keys["resourceId"], node.resource.as_str());
        assert_eq!(keys["keys"][0]["key"], STANDARD.encode(&node.key).as_str());
        // The environment alone names the database too.
        let (ok, _, stderr) = run(&["keys", "list", "--data-dir", "/nonexistent"], None).await;
        assert!(!ok && stderr.contains("no resource"), "{stderr}");
        let mut cmd = binary();
        cmd.args(["keys", "list", "--output", "json"]).env("ACSID_DATABASE_URL", &url);
        let out = cmd.output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(keys["resourceId"], node.resource.as_str());
    })
    .await;
}

/// Regenerations (and the requests after each) per node pair.
const REGENERATIONS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regenerated_key_is_refused_by_every_node_once_the_command_returns() {
    with_fresh_database("a_regenerated_key_is_refused_by_every_node", |url| async move {
        let a = Node::start(&url).await;
        let b = Node::start(&url).await;
        assert_eq!(a.resource, b.resource);
        let create = "/identities?api-version=2023-10-01";
        let mut old = a.key.clone();
        for trial in 0..REGENERATIONS {
            let (ok, stdout, stderr) =
                run(&["keys", "regenerate", "primary", "--database-url", &url], None).await;
            assert!(ok, "trial {trial}: {stderr}");
            let stdout = String::from_utf8(stdout).unwrap();
            let fresh = stdout.trim().split_once(";accesskey=").expect("a connection string").1;
            let fresh = STANDARD.decode(fresh).unwrap();
            for (name, node) in [("A", &a), ("B", &b)] {
                let (status, body) =
                    node.send_with(&old, Method::POST, create, None).await.expect("an answer");
                assert_eq!(status, StatusCode::UNAUTHORIZED, "trial {trial}: node {name}: {body}");
                let (status, body) =
                    node.send_with(&fresh, Method::POST, create, None).await.expect("an answer");
                assert_eq!(status, StatusCode::CREATED, "trial {trial}: node {name}: {body}");
            }
            old = fresh;
        }
        // A rotated signing key signs the next token on either node at once.
        let (ok, stdout, stderr) =
            run(&["signing-keys", "rotate", "--database-url", &url], None).await;
        assert!(ok, "{stderr}");
        let kid = String::from_utf8(stdout).unwrap().trim().rsplit(' ').next().unwrap().to_owned();
        for node in [&a, &b] {
            let body = json!({"createTokenWithScopes": ["chat"]});
            let (status, created) =
                node.send_with(&old, Method::POST, create, Some(body)).await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{created}");
            let token = created["accessToken"]["token"].as_str().unwrap();
            let header = acs_identity_testkit::jwt_header(token);
            assert_eq!(header["kid"], kid.as_str());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_change_reports_a_node_that_does_not_confirm() {
    with_fresh_database("a_key_change_reports_a_node_that_does_not_confirm", |url| async move {
        let node = Node::start(&url).await;
        // A node that stops (SIGSTOP) neither confirms nor serves; the command waits for it
        // while its row is recent, then says so and exits with 1. The key is changed anyway.
        let pid = node.child.id().unwrap().to_string();
        let stop = std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap();
        assert!(stop.success());
        let started = Instant::now();
        let mut cmd = binary();
        cmd.args([
            "keys",
            "regenerate",
            "secondary",
            "--wait-timeout",
            "1",
            "--database-url",
            &url,
        ]);
        let out = cmd.output().await.unwrap();
        let _ = std::process::Command::new("kill").args(["-CONT", &pid]).status();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("did not confirm") && stderr.contains("1 running node"),
            "{stderr}"
        );
        assert!(started.elapsed() >= Duration::from_secs(1));
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.contains(";accesskey="), "the new key is printed anyway: {stdout}");
        // Resumed, the node catches up: the next change is confirmed.
        let (ok, _, stderr) =
            run(&["keys", "regenerate", "secondary", "--database-url", &url], None).await;
        assert!(ok, "{stderr}");
    })
    .await;
}
