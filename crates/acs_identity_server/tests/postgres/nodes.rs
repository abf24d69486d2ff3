//! Two (or more) nodes on one database are one resource: what one node acknowledges, the
//! next request to any other node sees.

use std::sync::Arc;
use std::time::{Duration, Instant};

use acs_identity_core::hmac::KeyName;
use acs_identity_store::testing::with_fresh_database;
use acs_identity_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{identity_path, node, summary};

/// Trials per cross-node test.
const TRIALS: usize = 1000;
/// Trials run in this many concurrent lanes (each lane one trial at a time).
const LANES: usize = 4;
/// A revoke or delete on A must be visible on B within this.
const VISIBLE_WITHIN: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_are_one_resource() {
    with_fresh_database("nodes_starting_together_are_one_resource", |url| async move {
        let (a, b, c) = tokio::join!(node(&url), node(&url), node(&url));
        assert_eq!(a.resource_id(), b.resource_id());
        assert_eq!(a.resource_id(), c.resource_id());
        for name in [KeyName::Primary, KeyName::Secondary] {
            assert_eq!(a.key(name), b.key(name));
            assert_eq!(a.key(name), c.key(name));
        }
        // Each node publishes the same signing keys.
        let ja = jwks(&a).await;
        assert!(!ja["keys"].as_array().unwrap().is_empty());
        assert_eq!(ja, jwks(&b).await);
        assert_eq!(ja, jwks(&c).await);
        // A node started later joins the same resource.
        let d = node(&url).await;
        assert_eq!(d.resource_id(), a.resource_id());
        assert_eq!(d.key(KeyName::Primary), a.key(KeyName::Primary));
        for s in [a, b, c, d] {
            s.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_created_on_one_node_is_usable_on_another() {
    with_fresh_database("a_user_created_on_one_node_is_usable_on_another", |url| async move {
        let a = node(&url).await;
        let b = node(&url).await;
        let preview = "2025-03-02-preview";

        let r = a.create_user_with_custom_id("alice@example.com").await;
        let id = r.json["identity"]["id"].as_str().unwrap().to_owned();
        let token_a = r.json["accessToken"]["token"].as_str().unwrap().to_owned();

        // B reads it, issues for it, and maps the custom id to it.
        let r = b.request(Method::GET, &identity_path(&id, preview)).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["customId"], "alice@example.com");
        let token_b = b.issue_token(&id).await;
        let r = b
            .post(
                &format!("/identities?api-version={preview}"),
                json!({"customId": "alice@example.com"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.json["identity"]["id"], id.as_str(), "same custom id, same user on B");

        // Tokens of either node validate on both.
        for (node, token) in [(&a, &token_b), (&b, &token_a), (&a, &token_a), (&b, &token_b)] {
            let v = node.validate(token).await;
            assert_eq!(v["valid"], true, "{v}");
            assert_eq!(v["identity"]["id"], id.as_str());
        }

        // Deleted on B: gone on A, and its custom id maps to a new user.
        b.delete(&id).await;
        let r = a.request(Method::GET, &identity_path(&id, preview)).send().await;
        r.assert_error(404, "IdentityNotFound");
        let r = a
            .post(
                &format!("/identities?api-version={preview}"),
                json!({"customId": "alice@example.com"}),
            )
            .await;
        assert_ne!(r.json["identity"]["id"], id.as_str());
        a.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

/// Prints the figures and checks the bound: every token rejected within a second, and (as
/// the service reads the store on every request) by the very first request to B.
fn report(change: &str, trials: &[Trial], took: Duration) {
    let latencies: Vec<Duration> = trials.iter().map(|t| t.0).collect();
    let max = latencies.iter().max().copied().unwrap_or_default();
    let first = trials.iter().filter(|t| t.1 == 1).count();
    eprintln!(
        "{change} on A -> rejected on B: {} ({TRIALS} trials in {took:?}); \
         rejected by the first request to B in {first}/{TRIALS}",
        summary(latencies)
    );
    assert!(max < VISIBLE_WITHIN, "max {max:?}");
    assert_eq!(first, TRIALS, "B answered from stale state");
}

async fn jwks(s: &TestServer) -> serde_json::Value {
    s.request(Method::GET, "/.well-known/jwks.json").unsigned().send().await.json
}

/// What a trial does on A after the token validated on B: revoke or delete.
#[derive(Clone, Copy, Debug)]
enum Change {
    Revoke,
    Delete,
}

/// One trial's result: how long after A's acknowledgement B first rejected the token, and
/// how many validation requests to B that took.
type Trial = (Duration, u32);

/// `TRIALS` times: a token issued on A validates on B; A revokes (or deletes); B is asked
/// until it rejects the token.
async fn cross_node_trials(a: Arc<TestServer>, b: Arc<TestServer>, change: Change) -> Vec<Trial> {
    let mut lanes = Vec::new();
    for lane in 0..LANES {
        let (a, b) = (a.clone(), b.clone());
        lanes.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            // Revoke trials reuse one user per lane; delete trials need a new user each.
            let mut user = a.create_user().await;
            for trial in (lane..TRIALS).step_by(LANES) {
                if matches!(change, Change::Delete) && trial >= LANES {
                    user = a.create_user().await;
                }
                let token = a.issue_token(&user).await;
                let before = b.validate(&token).await;
                assert_eq!(before["valid"], true, "trial {trial}: {before}");
                match change {
                    Change::Revoke => a.revoke(&user).await,
                    Change::Delete => a.delete(&user).await,
                }
                let acknowledged = Instant::now();
                let expected = match change {
                    Change::Revoke => "revoked",
                    Change::Delete => "deleted",
                };
                let mut requests = 0;
                loop {
                    let v = b.validate(&token).await;
                    requests += 1;
                    if v["valid"] == false {
                        assert_eq!(v["reason"], expected, "trial {trial}: {v}");
                        latencies.push((acknowledged.elapsed(), requests));
                        break;
                    }
                    assert!(
                        acknowledged.elapsed() < VISIBLE_WITHIN,
                        "trial {trial}: B still accepts the token {:?} after A's {change:?}",
                        acknowledged.elapsed()
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for l in lanes {
        all.extend(l.await.expect("lane"));
    }
    assert_eq!(all.len(), TRIALS);
    all
}

/// Two nodes on a fresh database of `test`: `change` on A, seen by the next request to B,
/// over every trial; reported as `label`.
async fn change_seen_by_the_other_node(test: &str, change: Change, label: &'static str) {
    with_fresh_database(test, move |url| async move {
        let a = Arc::new(node(&url).await);
        let b = Arc::new(node(&url).await);
        let started = Instant::now();
        let trials = cross_node_trials(a.clone(), b.clone(), change).await;
        report(label, &trials, started.elapsed());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_on_one_node_is_seen_by_the_next_request_to_another() {
    change_seen_by_the_other_node(
        "a_revoke_on_one_node_is_seen_by_the_next_request_to_another",
        Change::Revoke,
        "revoke",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_on_one_node_is_seen_by_the_next_request_to_another() {
    change_seen_by_the_other_node(
        "a_delete_on_one_node_is_seen_by_the_next_request_to_another",
        Change::Delete,
        "delete",
    )
    .await;
}

/// Issue-token writes nothing before answering and reads the identity with one primary-key
/// read: a token issued on either node after a revoke's 204 on A carries the new
/// generation, while other issues of the same user run on both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_on_any_node_after_a_revoke_carries_its_generation() {
    with_fresh_database(
        "a_token_issued_on_any_node_after_a_revoke_carries_its_generation",
        |url| async move {
            let a = Arc::new(node(&url).await);
            let b = Arc::new(node(&url).await);
            let user = a.create_user().await;
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let mut background = Vec::new();
            for n in [a.clone(), b.clone()] {
                let (user, stop) = (user.clone(), stop.clone());
                background.push(tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        n.issue_token(&user).await;
                    }
                }));
            }
            for round in 1..=200u64 {
                a.revoke(&user).await;
                for n in [&a, &b] {
                    let token = n.issue_token(&user).await;
                    let gen = acs_identity_testkit::jwt_payload(&token)["gen"].as_u64();
                    assert_eq!(gen, Some(round), "round {round}");
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for t in background {
                t.await.expect("issuer");
            }
            // lastTokenIssuedAt reaches the database behind the requests (at the latest
            // when the nodes stop).
            let get = identity_path(&user, "2025-03-02-preview");
            let a = Arc::into_inner(a).expect("one owner");
            let b = Arc::into_inner(b).expect("one owner");
            b.shutdown().await;
            let r = a.request(Method::GET, &get).send().await;
            assert!(r.json["lastTokenIssuedAt"].is_string(), "{}", r.text);
            a.shutdown().await;
        },
    )
    .await;
}
