//! Crash consistency: `acs-identity serve` on SQLite is SIGKILLed at random moments while
//! several clients create users (with a token) and revoke them, and restarted on the same
//! data directory each time. Whatever the service acknowledged (2xx) must be there after the
//! last restart: every acknowledged user exists, every acknowledged revocation holds (the
//! token issued before it is `revoked`), and no token whose user was never revoked is
//! refused. The database then passes `PRAGMA integrity_check`.
//!
//! `ACSID_CRASH_ROUNDS` (default 20) sets the number of kills and `ACSID_CRASH_SEED` the
//! random seed (printed, so a failing run can be repeated).
#![cfg(unix)]

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use acs_identity_core::hmac::{
    authorization_header, content_hash, string_to_sign, AccessKey, KeyName,
};
use acs_identity_core::time_format::http_date;
use acs_identity_core::{Clock, SystemClock};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Clients creating and revoking at once.
const CLIENTS: usize = 4;

/// `acs-identity serve` on `data_dir`, with a clean environment.
fn serve(data_dir: &Path) -> (Child, String, String) {
    let (child, banner) = support::spawn_serve(
        support::command()
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .stderr(Stdio::null()),
    );
    let banner = banner.expect("serve prints its endpoint and connection string");
    (child, banner.endpoint, banner.connection_string)
}

/// A small deterministic generator (xorshift64*), so a seed repeats a run's choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Signs requests like the SDKs and sends them to whichever node is up.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    key: Arc<AccessKey>,
}

impl Client {
    async fn send(
        &self,
        endpoint: &str,
        method: Method,
        path_and_query: &str,
        body: &Value,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let bytes = serde_json::to_vec(body).expect("json");
        let date = http_date(SystemClock.now());
        let host = endpoint.split("://").nth(1).expect("host");
        let hash = content_hash(&bytes);
        let sts = string_to_sign(method.as_str(), path_and_query, &date, host, &hash);
        let response = self
            .http
            .request(method, format!("{endpoint}{path_and_query}"))
            .header("x-ms-date", date)
            .header("x-ms-content-sha256", hash)
            .header("authorization", authorization_header(&self.key.sign(&sts)))
            .header("content-type", "application/json")
            .body(bytes)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// What the service acknowledged, and what it was asked without an answer.
#[derive(Default)]
struct Ledger {
    /// Users whose create (with a token) was acknowledged: id and the token.
    created: Vec<(String, String)>,
    /// Users whose revoke was acknowledged.
    revoked: HashSet<String>,
    /// Users a revoke was sent for, acknowledged or not.
    revoke_sent: HashSet<String>,
    /// Responses other than the expected 201/204: never acceptable.
    unexpected: Vec<String>,
    /// Requests without a response (the node was killed or not up yet).
    unanswered: usize,
}

fn encode(raw_id: &str) -> String {
    raw_id.replace(':', "%3A")
}

async fn client_loop(
    client: Client,
    endpoint: Arc<RwLock<Option<String>>>,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    mut rng: Rng,
) {
    while !stop.load(Ordering::Relaxed) {
        let Some(ep) = endpoint.read().unwrap().clone() else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let body = json!({"createTokenWithScopes": ["chat"]});
        let created = client.send(&ep, Method::POST, "/identities?api-version=2023-10-01", &body);
        let id = match created.await {
            Ok((StatusCode::CREATED, v)) => {
                let id = v["identity"]["id"].as_str().expect("id").to_owned();
                let token = v["accessToken"]["token"].as_str().expect("token").to_owned();
                ledger.lock().unwrap().created.push((id.clone(), token));
                id
            }
            Ok((status, v)) => {
                ledger.lock().unwrap().unexpected.push(format!("create: {status} {v}"));
                continue;
            }
            Err(_) => {
                ledger.lock().unwrap().unanswered += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        if rng.below(2) == 0 {
            continue;
        }
        ledger.lock().unwrap().revoke_sent.insert(id.clone());
        let path =
            format!("/identities/{}/:revokeAccessTokens?api-version=2023-10-01", encode(&id));
        match client.send(&ep, Method::POST, &path, &json!({})).await {
            Ok((StatusCode::NO_CONTENT, _)) => {
                ledger.lock().unwrap().revoked.insert(id);
            }
            Ok((status, v)) => {
                ledger.lock().unwrap().unexpected.push(format!("revoke: {status} {v}"));
            }
            Err(_) => ledger.lock().unwrap().unanswered += 1,
        }
    }
}

/// Checks one acknowledged user after the last restart; `Err` describes a lost write.
async fn check_user(
    client: &Client,
    endpoint: &str,
    id: &str,
    token: &str,
    revoked: bool,
    revoke_sent: bool,
) -> Result<(), String> {
    let path = format!("/identities/{}?api-version=2025-03-02-preview", encode(id));
    let (status, v) =
        client.send(endpoint, Method::GET, &path, &json!({})).await.map_err(|e| e.to_string())?;
    if status != StatusCode::OK || v["id"] != id {
        return Err(format!("acknowledged user {id} is gone: {status} {v}"));
    }
    let (status, v) = client
        .send(endpoint, Method::POST, "/accessTokens/:validate", &json!({ "token": token }))
        .await
        .map_err(|e| e.to_string())?;
    if status != StatusCode::OK {
        return Err(format!("validate for {id}: {status} {v}"));
    }
    if revoked && (v["valid"] != false || v["reason"] != "revoked") {
        return Err(format!("acknowledged revoke of {id} lost: the earlier token is {v}"));
    }
    if !revoke_sent && v["valid"] != true {
        return Err(format!("token of {id}, never revoked, is refused: {v}"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_kill_9_under_load_loses_no_acknowledged_write() {
    let rounds: usize =
        std::env::var("ACSID_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("ACSID_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| SystemClock.now().unix_timestamp_nanos() as u64 | 1);
    let mut rng = Rng(seed);
    let started = Instant::now();
    let data = tempfile::tempdir().unwrap();

    // The first start creates the resource, its keys and the development CA.
    let (mut child, first, connection_string) = serve(data.path());
    let ca = std::fs::read(data.path().join("tls/ca.pem")).expect("development CA");
    let key_b64 = connection_string.split_once(";accesskey=").expect("access key").1;
    let client = Client {
        http: reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        key: Arc::new(AccessKey::new(KeyName::Primary, &STANDARD.decode(key_b64).unwrap())),
    };
    let endpoint = Arc::new(RwLock::new(Some(first)));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let rng = Rng(rng.next() | 1);
        clients.push(tokio::spawn(client_loop(
            client.clone(),
            endpoint.clone(),
            ledger.clone(),
            stop.clone(),
            rng,
        )));
    }

    // Kill at a random moment, restart on the same data directory, repeat.
    let mut quiet_rounds = 0;
    for round in 1..=rounds {
        let before = ledger.lock().unwrap().created.len();
        tokio::time::sleep(Duration::from_millis(100 + rng.below(500))).await;
        child.kill().expect("SIGKILL the service");
        *endpoint.write().unwrap() = None;
        child.wait().expect("reap the service");
        if ledger.lock().unwrap().created.len() == before {
            quiet_rounds += 1;
        }
        if round < rounds {
            let (next, ep, _) = serve(data.path());
            child = next;
            *endpoint.write().unwrap() = Some(ep);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }

    // The last restart: everything acknowledged must be there.
    let (mut child, ep, _) = serve(data.path());
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    assert!(ledger.unexpected.is_empty(), "responses other than 201/204: {:?}", ledger.unexpected);
    assert!(ledger.created.len() >= 20, "too little load: {} creates", ledger.created.len());
    assert!(ledger.revoked.len() >= 10, "too little load: {} revokes", ledger.revoked.len());
    let revoked = Arc::new(ledger.revoked.clone());
    let revoke_sent = Arc::new(ledger.revoke_sent.clone());
    let mut checks = tokio::task::JoinSet::new();
    for chunk in ledger.created.chunks(ledger.created.len().div_ceil(CLIENTS)) {
        let (chunk, client, ep) = (chunk.to_vec(), client.clone(), ep.clone());
        let (revoked, revoke_sent) = (revoked.clone(), revoke_sent.clone());
        checks.spawn(async move {
            let mut lost = Vec::new();
            for (id, token) in &chunk {
                let (r, s) = (revoked.contains(id), revoke_sent.contains(id));
                if let Err(e) = check_user(&client, &ep, id, token, r, s).await {
                    lost.push(e);
                }
            }
            lost
        });
    }
    let mut lost = Vec::new();
    while let Some(result) = checks.join_next().await {
        lost.extend(result.unwrap());
    }
    assert!(lost.is_empty(), "{} acknowledged writes lost:\n{}", lost.len(), lost.join("\n"));

    // Stop gracefully, then SQLite's own check of the file.
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "serve did not stop cleanly: {status:?}");
    let db = data.path().join("acs-identity.db");
    let store = acs_identity_store::SqliteStore::open(&db).await.expect("open the database");
    store.integrity_check().await.expect("PRAGMA integrity_check = ok");
    store.close().await;

    println!(
        "crash: seed {seed}, {rounds} SIGKILLs in {:.1} s ({quiet_rounds} rounds without an \
         acknowledged create); acknowledged: {} creates, {} revokes; {} revokes sent without \
         an answer counted either way; {} requests unanswered; lost: 0; integrity_check: ok",
        started.elapsed().as_secs_f64(),
        ledger.created.len(),
        ledger.revoked.len(),
        ledger.revoke_sent.len() - ledger.revoked.len(),
        ledger.unanswered,
    );
}
