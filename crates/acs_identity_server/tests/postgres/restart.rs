//! The service while its PostgreSQL server stops and starts under load: requests fail
//! fast with ACS's 503 (never 500, never hanging), the service recovers by itself, and
//! nothing acknowledged is lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acs_identity_store::testing::{admin_url, Cluster};
use acs_identity_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{assert_unavailable, issue_path, node, revoke_path, summary};

/// Writers driving the service.
const WRITERS: usize = 4;
/// A failing request must be answered within this (the pool's acquire timeout is 2 s).
const FAIL_WITHIN: Duration = Duration::from_secs(4);
/// The service must work again this soon after PostgreSQL accepts connections.
const RECOVER_WITHIN: Duration = Duration::from_secs(5);

/// What the writers saw.
#[derive(Debug, Default)]
struct Outcomes {
    /// Users whose creation was acknowledged (201).
    created: Vec<String>,
    /// (user, token issued before the revoke) for acknowledged revokes (204).
    revoked: Vec<(String, String)>,
    /// Tokens issued (200) and not revoked since (no revoke of their user was answered,
    /// with success or 503).
    current: Vec<(String, String)>,
    /// Latencies of 503 answers.
    unavailable: Vec<Duration>,
    /// Anything that is neither success nor ACS's 503.
    wrong: Vec<String>,
}

/// Creates users, issues tokens and revokes them in a loop until `stop`.
async fn writer(node: Arc<TestServer>, stop: Arc<AtomicBool>, out: Arc<Mutex<Outcomes>>) {
    let mut user: Option<String> = None;
    let mut token: Option<String> = None;
    let mut step = 0usize;
    while !stop.load(Ordering::Relaxed) {
        step += 1;
        let started = Instant::now();
        let (request, what) = match (&user, &token) {
            (None, _) => {
                (node.request(Method::POST, "/identities?api-version=2023-10-01"), "create")
            }
            (Some(u), None) => (
                node.request(Method::POST, &issue_path(u)).json(&json!({"scopes": ["chat"]})),
                "issue",
            ),
            (Some(u), Some(_)) => (node.request(Method::POST, &revoke_path(u)), "revoke"),
        };
        let Some(r) = request.try_send().await else {
            out.lock().unwrap().wrong.push(format!("{what}: connection failed"));
            continue;
        };
        let elapsed = started.elapsed();
        let mut out = out.lock().unwrap();
        match (what, r.status) {
            ("create", StatusCode::CREATED) => {
                let id = r.json["identity"]["id"].as_str().unwrap().to_owned();
                out.created.push(id.clone());
                user = Some(id);
            }
            ("issue", StatusCode::OK) => {
                let t = r.json["token"].as_str().unwrap().to_owned();
                out.current.push((user.clone().unwrap(), t.clone()));
                token = Some(t);
            }
            ("revoke", StatusCode::NO_CONTENT) => {
                let (u, t) = (user.clone().unwrap(), token.take().unwrap());
                out.current.retain(|(_, c)| *c != t);
                out.revoked.push((u, t));
                // Every few rounds, move on to a new user.
                if step.is_multiple_of(5) {
                    user = None;
                }
            }
            (_, StatusCode::SERVICE_UNAVAILABLE) => {
                assert_unavailable(&r);
                // A revoke answered 503 may or may not have happened.
                if what == "revoke" {
                    out.current.retain(|(_, c)| Some(c) != token.as_ref());
                }
                out.unavailable.push(elapsed);
                if elapsed > FAIL_WITHIN {
                    out.wrong.push(format!("{what}: 503 after {elapsed:?}"));
                }
            }
            (_, status) => out.wrong.push(format!("{what}: {status} {}", r.text)),
        }
    }
}

/// Polls until a signed request succeeds; returns how long that took.
async fn until_recovered(node: &TestServer) -> Duration {
    let started = Instant::now();
    loop {
        let r = node.request(Method::POST, "/identities?api-version=2023-10-01").send().await;
        if r.status == StatusCode::CREATED {
            return started.elapsed();
        }
        assert_unavailable(&r);
        assert!(started.elapsed() < RECOVER_WITHIN, "not recovered after {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_under_load_lose_nothing_acknowledged() {
    if admin_url("postgres_restarts_under_load_lose_nothing_acknowledged").is_none() {
        return;
    }
    let cluster = Cluster::start().await;
    let node = Arc::new(node(&cluster.url("postgres")).await);
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Outcomes::default()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| tokio::spawn(writer(node.clone(), stop.clone(), out.clone())))
        .collect();

    let mut recoveries = Vec::new();
    for mode in ["fast", "immediate", "fast"] {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let before = out.lock().unwrap().created.len();
        assert!(before > 0, "the writers make progress");
        cluster.stop(mode).await;
        // While PostgreSQL is down: ACS's 503, quickly, from every route.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let r = node.request(Method::GET, "/healthz").unsigned().send().await;
        assert_unavailable(&r);
        let probe = Instant::now();
        let r = node.request(Method::POST, "/identities?api-version=2023-10-01").send().await;
        assert_unavailable(&r);
        assert!(probe.elapsed() < FAIL_WITHIN, "503 took {:?}", probe.elapsed());

        cluster.start_again().await;
        let recovered = until_recovered(&node).await;
        eprintln!("pg_ctl stop -m {mode}: service recovered {recovered:?} after PostgreSQL accepted connections");
        recoveries.push(recovered);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }

    let out = std::mem::take(&mut *out.lock().unwrap());
    assert!(out.wrong.is_empty(), "answers other than success or ACS's 503: {:?}", out.wrong);
    assert!(!out.unavailable.is_empty(), "the outages were seen");
    eprintln!(
        "acknowledged: {} creates, {} revokes; 503 answers: {}; recoveries: {recoveries:?}",
        out.created.len(),
        out.revoked.len(),
        summary(out.unavailable.clone())
    );

    // Nothing acknowledged was lost: every created user exists, every acknowledged revoke
    // rejects the token issued before it, and tokens issued after the last revoke validate.
    node.assert_kept(&out.created, &out.revoked).await;
    for (id, token) in &out.current {
        let v = node.validate(token).await;
        assert_eq!(v["valid"], true, "token of {id}: {v}");
    }
    for r in &recoveries {
        assert!(*r < RECOVER_WITHIN);
    }
    Arc::try_unwrap(node).expect("sole owner").shutdown().await;
}
