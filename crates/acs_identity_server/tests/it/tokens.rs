//! Token validation, revocation and deletion, and the signing algorithms.

use acs_identity_core::clock::{Clock as _, SystemClock};
use std::sync::Arc;

use acs_identity_core::token::SigningAlgorithm;
use acs_identity_core::ManualClock;
use acs_identity_testkit::{encode_id, jwt_header, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;
use time::{Duration, OffsetDateTime};

#[tokio::test]
async fn revoke_splits_tokens_exactly_even_within_one_second() {
    let s = TestServer::start().await;
    let id = s.create_user().await;
    let revoke =
        format!("/identities/{}/:revokeAccessTokens?api-version=2023-10-01", encode_id(&id));
    for _ in 0..5 {
        let before = s.issue_token(&id).await;
        assert_eq!(s.validate(&before).await["valid"], true);
        let r = s.send(Method::POST, &revoke).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let after = s.issue_token(&id).await;
        let v = s.validate(&before).await;
        assert_eq!(v, json!({"valid": false, "reason": "revoked"}));
        let v = s.validate(&after).await;
        assert_eq!(v["valid"], true, "{v}");
        assert_eq!(v["identity"]["id"], id.as_str());
        assert_eq!(v["scopes"], json!(["chat"]));
    }
}

#[tokio::test]
async fn deleting_invalidates_every_token() {
    let s = TestServer::start().await;
    let id = s.create_user().await;
    let tokens = [s.issue_token(&id).await, s.issue_token(&id).await];
    s.send(Method::DELETE, &format!("/identities/{}?api-version=2023-10-01", encode_id(&id))).await;
    for t in tokens {
        assert_eq!(s.validate(&t).await, json!({"valid": false, "reason": "deleted"}));
    }
}

#[tokio::test]
async fn validation_reasons() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let s = TestServer::start_with(|_| {}, clock.clone()).await;
    let other = TestServer::start().await;
    let id = s.create_user().await;
    let token = s.issue_token(&id).await;
    let foreign_id = other.create_user().await;
    let foreign = other.issue_token(&foreign_id).await;
    let mut tampered = token.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    assert_eq!(s.validate(&foreign).await["reason"], "foreign");
    assert_eq!(s.validate(&tampered).await["reason"], "signature");
    for bad in ["", "abc", "a.b.c", "x.y"] {
        assert_eq!(s.validate(bad).await["reason"], "malformed", "{bad}");
    }
    let valid = s.validate(&token).await;
    assert_eq!(valid["valid"], true);
    assert!(valid["expiresOn"].as_str().unwrap().ends_with("+00:00"));
    clock.advance(Duration::hours(25));
    let r = s
        .request(Method::POST, "/accessTokens/:validate")
        .json(&json!({"token": token}))
        .date(clock.now_plain())
        .send()
        .await;
    assert_eq!(r.json, json!({"valid": false, "reason": "expired"}));
    // The body must carry a token.
    let r = s
        .request(Method::POST, "/accessTokens/:validate")
        .json(&json!({}))
        .date(clock.now_plain())
        .send()
        .await;
    r.assert_error(400, "ValidationError");
}

trait NowPlain {
    fn now_plain(&self) -> OffsetDateTime;
}

impl NowPlain for ManualClock {
    fn now_plain(&self) -> OffsetDateTime {
        acs_identity_core::Clock::now(self)
    }
}

#[tokio::test]
async fn every_signing_algorithm_issues_verifiable_tokens() {
    for (alg, kty) in [
        (SigningAlgorithm::Rs256, "RSA"),
        (SigningAlgorithm::EdDsa, "OKP"),
        (SigningAlgorithm::Es256, "EC"),
    ] {
        let s = TestServer::start_with(
            |c| c.signing_alg = alg,
            Arc::new(acs_identity_core::SystemClock),
        )
        .await;
        let id = s.create_user().await;
        let token = s.issue_token(&id).await;
        assert_eq!(jwt_header(&token)["alg"], alg.as_str());
        assert_eq!(s.validate(&token).await["valid"], true);
        let jwks = s.request(Method::GET, "/.well-known/jwks.json").unsigned().send().await.json;
        assert_eq!(jwks["keys"][0]["kty"], kty);
    }
}

/// The generation a token was issued under (its private claim `gen`).
fn generation(token: &str) -> u64 {
    acs_identity_testkit::jwt_payload(token)["gen"].as_u64().expect("gen claim")
}

/// Issue-token reads the identity's state from the node's identity cache, filled and updated
/// by concurrent requests; a token issued after a revoke's 204 must still carry the new
/// generation, and validate. Issuers run all the time, so cache reads, fills and the revokes'
/// updates race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_after_a_revoke_carries_its_generation() {
    let s = Arc::new(TestServer::start().await);
    let id = s.create_user().await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut background = Vec::new();
    for _ in 0..3 {
        let (s, id, stop) = (s.clone(), id.clone(), stop.clone());
        background.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                s.issue_token(&id).await;
                n += 1;
            }
            n
        }));
    }
    let revoke =
        format!("/identities/{}/:revokeAccessTokens?api-version=2023-10-01", encode_id(&id));
    for round in 1..=100u64 {
        let r = s.send(Method::POST, &revoke).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let after = s.issue_token(&id).await;
        assert_eq!(generation(&after), round, "round {round}");
        assert_eq!(s.validate(&after).await["valid"], true);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for b in background {
        assert!(b.await.unwrap() > 0, "the issuers ran alongside");
    }
}

/// Issuing writes nothing before answering: `lastTokenIssuedAt` reaches the store only with
/// the write-behind flush (here at shutdown), while `GET` on the node shows it at once.
#[tokio::test]
async fn last_token_issued_at_is_written_behind_and_at_shutdown() {
    let s = TestServer::start_with(|c| c.last_token_flush_ms = 60_000, Arc::new(SystemClock)).await;
    let id = s.create_user().await;
    let user = user_id(&id);
    s.issue_token(&id).await;
    let stored = s.inner().state().store().get_identity(user).await.unwrap().unwrap();
    assert_eq!(stored.last_token_issued_at, None, "nothing written before the answer");
    let get = format!("/identities/{}?api-version=2025-03-02-preview", encode_id(&id));
    let shown = s.send(Method::GET, &get).await;
    let shown = shown.json["lastTokenIssuedAt"].as_str().expect("shown at once").to_owned();

    // A graceful stop writes what is pending.
    let s = s.restart().await;
    let stored = s.inner().state().store().get_identity(user).await.unwrap().unwrap();
    assert!(stored.last_token_issued_at.is_some(), "written at shutdown");
    let r = s.send(Method::GET, &get).await;
    assert_eq!(r.json["lastTokenIssuedAt"], shown.as_str());
    s.shutdown().await;
}

/// Without a shutdown, the flush writes within `last_token_flush_ms`.
#[tokio::test]
async fn last_token_issued_at_is_flushed_periodically() {
    let s = TestServer::start_with(|c| c.last_token_flush_ms = 50, Arc::new(SystemClock)).await;
    let ids = [s.create_user().await, s.create_user().await];
    for id in &ids {
        s.issue_token(id).await;
        s.issue_token(id).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for id in &ids {
        loop {
            let stored =
                s.inner().state().store().get_identity(user_id(id)).await.unwrap().unwrap();
            if stored.last_token_issued_at.is_some() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never flushed");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert!(s.inner().state().token_marks().is_empty());
}

fn user_id(raw: &str) -> acs_identity_core::id::UserId {
    let (_, user) = raw.strip_prefix("8:acs:").and_then(|r| r.split_once('_')).expect("raw id");
    acs_identity_core::id::UserId::from_uuid(user.parse().expect("user id"))
}
