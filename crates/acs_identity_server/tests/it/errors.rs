//! Bad input: every answer is ACS's error envelope, nothing is written, nothing is 5xx.

use std::sync::Arc;

use acs_identity_core::{ApiVersion, SystemClock};
use acs_identity_testkit::{encode_id, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn api_version_missing_or_unsupported() {
    let s = TestServer::start().await;
    let r = s.send(Method::POST, "/identities").await;
    assert_eq!(
        r.assert_error(400, "ApiVersionUnspecified"),
        "An API version is required, but was not specified."
    );
    for v in ["2020-07-20-preview2", "2099-01-01", "latest", "2023-10-01%00"] {
        let r = s.send(Method::POST, &format!("/identities?api-version={v}")).await;
        let msg = r.assert_error(400, "UnsupportedApiVersion");
        assert!(msg.contains("does not support the API version"), "{msg}");
        assert!(!msg.contains('\0'));
    }
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let s = TestServer::start().await;
    let r = s.send(Method::GET, "/nothing-here?api-version=2023-10-01").await;
    r.assert_error(404, "NotFound");
    let r = s.send(Method::PUT, "/identities?api-version=2023-10-01").await;
    r.assert_error(405, "MethodNotAllowed");
    let r = s.send(Method::PATCH, "/identities/x?api-version=2023-10-01").await;
    r.assert_error(405, "MethodNotAllowed");
}

#[tokio::test]
async fn malformed_bodies_are_validation_errors_and_write_nothing() {
    let s = TestServer::start().await;
    let id = s.create_user().await;
    let issue = format!("/identities/{}/:issueAccessToken?api-version=2023-10-01", encode_id(&id));
    let before = s.inner().state().store().count_identities().await.unwrap();
    let bodies: Vec<&[u8]> = vec![
        b"{",
        b"[]",
        b"\"text\"",
        b"{\"createTokenWithScopes\": \"chat\"}",
        b"{\"createTokenWithScopes\": [1]}",
        b"{\"expiresInMinutes\": \"60\"}",
        b"{\"expiresInMinutes\": 60.5}",
        b"{\"expiresInMinutes\": 1e300}",
        b"\xff\xfe",
        b"{\"createTokenWithScopes\": [\"chat\"], \"expiresInMinutes\": 99999999999}",
    ];
    for body in bodies {
        let r = s
            .request(Method::POST, "/identities?api-version=2023-10-01")
            .body(body.to_vec())
            .send()
            .await;
        r.assert_error(400, "ValidationError");
        let r = s.request(Method::POST, &issue).body(body.to_vec()).send().await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
    assert_eq!(s.inner().state().store().count_identities().await.unwrap(), before);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let s = TestServer::start().await;
    let big = json!({"createTokenWithScopes": ["chat"], "pad": "x".repeat(70_000)});
    let r = s.post("/identities?api-version=2023-10-01", big.clone()).await;
    r.assert_error(413, "PayloadTooLarge");
    // The token exchanges read their (empty) body with the same limit.
    for exchange in
        ["/access/entra/:exchangeAccessToken", "/access/teamsExtension/:exchangeAccessToken"]
    {
        let r = s.post(&format!("{exchange}?api-version=2025-03-02-preview"), big.clone()).await;
        r.assert_error(413, "PayloadTooLarge");
    }
}

#[tokio::test]
async fn odd_but_valid_input_never_5xx() {
    let s = TestServer::start().await;
    let paths = [
        "/identities/%FF%FE/:issueAccessToken?api-version=2023-10-01",
        "/identities/%2F%2F/:issueAccessToken?api-version=2023-10-01",
        "/identities/8%3Aacs%3A%00/:revokeAccessTokens?api-version=2023-10-01",
        "/identities/%/:revokeAccessTokens?api-version=2023-10-01",
        "/identities?api-version=2023-10-01&api-version=2022-10-01",
        "/accessTokens/:validate",
    ];
    for p in paths {
        let r =
            s.request(Method::POST, p).json(&json!({"scopes": ["chat"], "token": 5})).send().await;
        assert!(
            r.status.is_client_error() || r.status.is_success(),
            "{p}: {} {}",
            r.status,
            r.text
        );
        if !r.status.is_success() {
            assert!(r.json["error"]["code"].is_string(), "{p}: {}", r.text);
        }
    }
}

#[tokio::test]
async fn throttled_operations_get_429_with_retry_after() {
    use acs_identity_server::throttle::{Limit, ThrottleClass};
    let s = TestServer::start_with(
        |c| {
            c.throttle.limits.insert(
                ThrottleClass::IssueAccessToken,
                Limit { window_seconds: 60, max_requests: 3 },
            );
        },
        std::sync::Arc::new(acs_identity_core::SystemClock),
    )
    .await;
    let id = s.create_user().await;
    let path = format!("/identities/{}/:issueAccessToken?api-version=2023-10-01", encode_id(&id));
    for _ in 0..3 {
        assert_eq!(s.post(&path, json!({"scopes": ["chat"]})).await.status, StatusCode::OK);
    }
    let r = s.post(&path, json!({"scopes": ["chat"]})).await;
    r.assert_error(429, "TooManyRequests");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Other operations are not limited.
    assert_eq!(
        s.send(Method::POST, "/identities?api-version=2023-10-01").await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn skipping_the_version_check_serves_unknown_versions_as_the_newest() {
    let s =
        TestServer::start_with(|c| c.skip_api_version_check = true, Arc::new(SystemClock)).await;
    let r =
        s.request(Method::POST, "/identities?api-version=2099-01-01").json(&json!({})).send().await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    let newest = ApiVersion::ALL.into_iter().rev().find(|v| v.has_custom_id()).unwrap();
    assert!(r.header("api-supported-versions").unwrap().contains(newest.as_str()));
    let id = r.json["identity"]["id"].as_str().unwrap().to_owned();
    // Served as the newest: GET of an identity exists from 2025-03-02-preview on.
    let path = format!("/identities/{}?api-version=2099-01-01", encode_id(&id));
    let got = s.send(Method::GET, &path).await;
    assert_eq!(got.status.as_u16(), 200, "{}", got.text);
    assert_eq!(got.json["id"], id.as_str());
    // A missing version is still missing, and a known one the operation lacks still refused.
    let r = s.send(Method::POST, "/identities").await;
    r.assert_error(400, "ApiVersionUnspecified");
    let path = format!("/identities/{}?api-version=2023-10-01", encode_id(&id));
    s.send(Method::GET, &path).await.assert_error(400, "UnsupportedApiVersion");
}
