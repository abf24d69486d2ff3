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
        let r = s.request(Method::POST, &revoke).send().await;
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
    s.request(Method::DELETE, &format!("/identities/{}?api-version=2023-10-01", encode_id(&id)))
        .send()
        .await;
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
