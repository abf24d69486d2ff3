//! Crash consistency: `acs-identity serve` on SQLite is SIGKILLed at random moments while
//! several clients create users (with a token), issue tokens, revoke and delete them, and
//! restarted on the same data directory each time. Every state change the service
//! acknowledged (2xx) must be there after the last restart: every acknowledged user exists,
//! every acknowledged revocation holds (the token issued before it is `revoked`), every
//! acknowledged delete holds (404, the token `deleted`), and no token whose user was never
//! revoked or deleted is refused. `lastTokenIssuedAt`, written behind every
//! `last_token_flush_ms` (here [`FLUSH_MS`]), may lose at most that window: every issue
//! acknowledged more than [`FLUSH_MS`] (plus [`SCHEDULING_ALLOWANCE`]) before a kill is
//! reflected, and the value is never later than the last issue sent. The database then
//! passes `PRAGMA integrity_check`.
//!
//! `ACSID_CRASH_ROUNDS` (default 20) sets the number of kills and `ACSID_CRASH_SEED` the
//! random seed (printed, so a failing run can be repeated).
#![cfg(unix)]

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use acs_identity_core::hmac::{
    authorization_header, content_hash, string_to_sign, AccessKey, KeyName,
};
use acs_identity_core::time_format::http_date;
use acs_identity_core::{Clock, SystemClock};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Clients creating, issuing, revoking and deleting at once.
const CLIENTS: usize = 4;
/// `last_token_flush_ms` of the service under test.
const FLUSH_MS: u64 = 200;
/// Time allowed beyond one flush window for the flush to be scheduled and committed on a
/// busy machine.
const SCHEDULING_ALLOWANCE: Duration = Duration::from_millis(300);

/// `acs-identity serve` on `data_dir`, with a clean environment.
fn serve(data_dir: &Path) -> (Child, String, String) {
    let (child, banner) = support::spawn_serve(
        support::serve_command(data_dir)
            .env("ACSID_LAST_TOKEN_FLUSH_MS", FLUSH_MS.to_string())
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
    /// Per user: when its create was sent, and every token issue sent for it (sent, and
    /// when it was acknowledged; `None` without an answer).
    issues: HashMap<String, Vec<(OffsetDateTime, Option<OffsetDateTime>)>>,
    /// Users whose delete was acknowledged.
    deleted: HashSet<String>,
    /// Users a delete was sent for, acknowledged or not.
    delete_sent: HashSet<String>,
    /// Users whose revoke was acknowledged.
    revoked: HashSet<String>,
    /// Users a revoke was sent for, acknowledged or not.
    revoke_sent: HashSet<String>,
    /// Responses other than the expected 201/204: never acceptable.
    unexpected: Vec<String>,
    /// Requests without a response (the node was killed or not up yet).
    unanswered: usize,
}

impl Ledger {
    /// The users a revoke (`revoke`) or a delete was sent for, and those it was acknowledged
    /// for.
    fn ends(&mut self, revoke: bool) -> (&mut HashSet<String>, &mut HashSet<String>) {
        if revoke {
            (&mut self.revoke_sent, &mut self.revoked)
        } else {
            (&mut self.delete_sent, &mut self.deleted)
        }
    }
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
        let sent = SystemClock.now();
        let created = client.send(&ep, Method::POST, "/identities?api-version=2023-10-01", &body);
        let id = match created.await {
            Ok((StatusCode::CREATED, v)) => {
                let id = v["identity"]["id"].as_str().expect("id").to_owned();
                let token = v["accessToken"]["token"].as_str().expect("token").to_owned();
                let acked = SystemClock.now();
                let mut ledger = ledger.lock().unwrap();
                ledger.created.push((id.clone(), token));
                // The create's token time is durable with the create.
                ledger.issues.insert(id.clone(), vec![(sent, Some(acked))]);
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
        let issue = format!("/identities/{}/:issueAccessToken?api-version=2023-10-01", encode(&id));
        for _ in 0..rng.below(4) {
            let sent = SystemClock.now();
            let answer = client.send(&ep, Method::POST, &issue, &json!({"scopes": ["chat"]})).await;
            let acked = SystemClock.now();
            let mut ledger = ledger.lock().unwrap();
            let acked = match answer {
                Ok((StatusCode::OK, _)) => Some(acked),
                Ok((status, v)) => {
                    ledger.unexpected.push(format!("issue: {status} {v}"));
                    None
                }
                Err(_) => {
                    ledger.unanswered += 1;
                    None
                }
            };
            ledger.issues.entry(id.clone()).or_default().push((sent, acked));
        }
        // Then, two times in three, revoke its tokens or delete it.
        let revoke = match rng.below(3) {
            0 => continue,
            1 => true,
            _ => false,
        };
        let (what, method, path) = if revoke {
            let path =
                format!("/identities/{}/:revokeAccessTokens?api-version=2023-10-01", encode(&id));
            ("revoke", Method::POST, path)
        } else {
            (
                "delete",
                Method::DELETE,
                format!("/identities/{}?api-version=2023-10-01", encode(&id)),
            )
        };
        ledger.lock().unwrap().ends(revoke).0.insert(id.clone());
        let answer = client.send(&ep, method, &path, &json!({})).await;
        let mut ledger = ledger.lock().unwrap();
        match answer {
            Ok((StatusCode::NO_CONTENT, _)) => {
                ledger.ends(revoke).1.insert(id);
            }
            Ok((status, v)) => ledger.unexpected.push(format!("{what}: {status} {v}")),
            Err(_) => ledger.unanswered += 1,
        }
    }
}

/// What the ledger says about one acknowledged user.
struct Expected<'a> {
    revoked: bool,
    revoke_sent: bool,
    deleted: bool,
    delete_sent: bool,
    /// Token issues sent for it (its create first).
    issues: &'a [(OffsetDateTime, Option<OffsetDateTime>)],
    /// When the service was killed, in order.
    kills: &'a [OffsetDateTime],
}

impl Expected<'_> {
    /// The earliest `lastTokenIssuedAt` allowed: the send time of the last issue that was
    /// acknowledged more than one flush window (plus the allowance) before the kill of the
    /// node that answered it.
    fn earliest_last_token(&self) -> Option<OffsetDateTime> {
        let window = Duration::from_millis(FLUSH_MS) + SCHEDULING_ALLOWANCE;
        self.issues
            .iter()
            .filter_map(|(sent, acked)| {
                let acked = (*acked)?;
                // The node that answered was alive when it handled the request (after it
                // was sent), so it is the one the first kill after `sent` ended. (The
                // answer may be read after that kill.)
                let kill = self.kills.iter().find(|k| **k > *sent);
                match kill {
                    Some(k) if *k - acked <= window => None,
                    _ => Some(*sent),
                }
            })
            .max()
    }

    /// The latest `lastTokenIssuedAt` possible: the answer of the last issue sent (or the
    /// kill that cut it off).
    fn latest_last_token(&self) -> OffsetDateTime {
        self.issues
            .iter()
            .map(|(sent, acked)| {
                acked.unwrap_or_else(|| {
                    self.kills.iter().find(|k| **k > *sent).copied().unwrap_or(*sent)
                })
            })
            .max()
            .expect("the create")
    }
}

/// Checks one acknowledged user after the last restart; `Err` describes a lost write.
async fn check_user(
    client: &Client,
    endpoint: &str,
    id: &str,
    token: &str,
    expected: Expected<'_>,
) -> Result<(), String> {
    let path = format!("/identities/{}?api-version=2025-03-02-preview", encode(id));
    let (status, v) =
        client.send(endpoint, Method::GET, &path, &json!({})).await.map_err(|e| e.to_string())?;
    let gone = status == StatusCode::NOT_FOUND && v["error"]["code"] == "IdentityNotFound";
    if expected.deleted && !gone {
        return Err(format!("acknowledged delete of {id} lost: {status} {v}"));
    }
    if !gone && (status != StatusCode::OK || v["id"] != id) {
        return Err(format!("acknowledged user {id} is gone: {status} {v}"));
    }
    let (status, validated) = client
        .send(endpoint, Method::POST, "/accessTokens/:validate", &json!({ "token": token }))
        .await
        .map_err(|e| e.to_string())?;
    if status != StatusCode::OK {
        return Err(format!("validate for {id}: {status} {validated}"));
    }
    if gone {
        if !expected.delete_sent || validated["reason"] != "deleted" {
            return Err(format!(
                "{id} is deleted (delete sent: {}), token {validated}",
                expected.delete_sent
            ));
        }
        return Ok(());
    }
    if expected.revoked && (validated["valid"] != false || validated["reason"] != "revoked") {
        return Err(format!("acknowledged revoke of {id} lost: the earlier token is {validated}"));
    }
    if !expected.revoke_sent && !expected.delete_sent && validated["valid"] != true {
        return Err(format!("token of {id}, never revoked, is refused: {validated}"));
    }
    let last = v["lastTokenIssuedAt"]
        .as_str()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .ok_or_else(|| format!("{id} has no lastTokenIssuedAt: {v}"))?;
    if let Some(earliest) = expected.earliest_last_token() {
        if last < earliest {
            return Err(format!(
                "lastTokenIssuedAt of {id} lost more than one flush window: {last} < {earliest} \
                 (issues sent/acknowledged: {:?}; kills: {:?})",
                expected.issues, expected.kills
            ));
        }
    }
    if last > expected.latest_last_token() {
        return Err(format!("lastTokenIssuedAt of {id} is later than any issue: {last}"));
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
    let mut kills = Vec::new();
    for round in 1..=rounds {
        let before = ledger.lock().unwrap().created.len();
        // Long enough, often, for token times to be flushed before the kill.
        tokio::time::sleep(Duration::from_millis(100 + rng.below(1200))).await;
        kills.push(SystemClock.now());
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
    assert!(
        ledger.unexpected.is_empty(),
        "responses other than 200/201/204: {:?}",
        ledger.unexpected
    );
    assert!(ledger.created.len() >= 20, "too little load: {} creates", ledger.created.len());
    assert!(ledger.revoked.len() >= 10, "too little load: {} revokes", ledger.revoked.len());
    assert!(ledger.deleted.len() >= 10, "too little load: {} deletes", ledger.deleted.len());
    let issues_acknowledged =
        ledger.issues.values().flatten().filter(|(_, acked)| acked.is_some()).count()
            - ledger.created.len();
    assert!(issues_acknowledged >= 20, "too little load: {issues_acknowledged} issues");
    let ledger = Arc::new(ledger);
    let kills = Arc::new(kills);
    let mut checks = tokio::task::JoinSet::new();
    for part in 0..CLIENTS {
        let (ledger, kills, client, ep) =
            (ledger.clone(), kills.clone(), client.clone(), ep.clone());
        checks.spawn(async move {
            let mut lost = Vec::new();
            for (id, token) in ledger.created.iter().skip(part).step_by(CLIENTS) {
                let expected = Expected {
                    revoked: ledger.revoked.contains(id),
                    revoke_sent: ledger.revoke_sent.contains(id),
                    deleted: ledger.deleted.contains(id),
                    delete_sent: ledger.delete_sent.contains(id),
                    issues: &ledger.issues[id],
                    kills: &kills,
                };
                if let Err(e) = check_user(&client, &ep, id, token, expected).await {
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
         acknowledged create); acknowledged: {} creates, {issues_acknowledged} token issues, {} \
         revokes, {} deletes; {} revokes and deletes sent without an answer counted either \
         way; {} requests unanswered; lost: 0; lastTokenIssuedAt within {FLUSH_MS} ms (+ \
         {SCHEDULING_ALLOWANCE:?}) of the last issue before each kill; integrity_check: ok",
        started.elapsed().as_secs_f64(),
        ledger.created.len(),
        ledger.revoked.len(),
        ledger.deleted.len(),
        ledger.revoke_sent.len() + ledger.delete_sent.len()
            - ledger.revoked.len()
            - ledger.deleted.len(),
        ledger.unanswered,
    );
}
