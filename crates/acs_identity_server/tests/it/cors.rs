//! CORS against the real service: preflights on every kind of route without a signature,
//! the headers on every answer (errors, throttling and limits included), the configured
//! origins, and preflights kept out of throttling and the audit log.

use std::sync::Arc;
use std::time::Duration;

use acs_identity_core::SystemClock;
use acs_identity_server::audit::AuditDestination;
use acs_identity_server::Config;
use acs_identity_testkit::{encode_id, TestResponse, TestServer, ThrottleClass};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::limits::{healthz_until_refused, hold_a_request, http_addr, read_response};

const ORIGIN: &str = "http://localhost:3000";
const CREATE: &str = "/identities?api-version=2023-10-01";
/// What the JS SDK's browser build asks for in a preflight (Chromium sorts and lower-cases).
const SDK_HEADERS: &str =
    "authorization,content-type,x-ms-client-request-id,x-ms-content-sha256,x-ms-date,x-ms-useragent";
const GENEROUS: Duration = Duration::from_secs(15);

async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(tweak, Arc::new(SystemClock)).await
}

/// A browser's preflight for `method` on `path` from `origin`.
async fn preflight(s: &TestServer, path: &str, method: &str, origin: &str) -> TestResponse {
    s.request(Method::OPTIONS, path)
        .unsigned()
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", SDK_HEADERS)
        .send()
        .await
}

fn list(r: &TestResponse, name: &str) -> Vec<String> {
    r.header(name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn cors_headers(r: &TestResponse) -> Vec<String> {
    r.headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

/// The headers of an answer a page on another origin may read.
fn assert_readable(r: &TestResponse, origin: &str, what: &str) {
    assert_eq!(r.header("access-control-allow-origin"), Some(origin), "{what}: {:?}", r.headers);
    let exposed = list(r, "access-control-expose-headers");
    for h in ["ms-cv", "x-ms-client-request-id", "api-supported-versions", "retry-after"] {
        assert!(exposed.iter().any(|e| e == h), "{what}: {h} not exposed: {exposed:?}");
    }
    assert_eq!(r.header("access-control-allow-credentials"), None, "{what}");
}

fn assert_preflight_ok(r: &TestResponse, method: &str, origin: &str, what: &str) {
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{what}: {}", r.text);
    assert_eq!(r.text, "", "{what}");
    assert_eq!(r.header("access-control-allow-origin"), Some(origin), "{what}");
    assert!(
        list(r, "access-control-allow-methods").contains(&method.to_ascii_lowercase()),
        "{what}"
    );
    let allowed = list(r, "access-control-allow-headers");
    for h in SDK_HEADERS.split(',') {
        assert!(allowed.iter().any(|a| a == h), "{what}: {h} not allowed: {allowed:?}");
    }
    assert_eq!(r.header("access-control-max-age"), Some("7200"), "{what}");
    assert_eq!(r.header("access-control-allow-credentials"), None, "{what}");
}

#[tokio::test]
async fn preflights_on_every_route_need_no_signature() {
    let s = start(|_| {}).await;
    let id = encode_id(
        "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001",
    );
    let v = "api-version=2023-10-01";
    let cases = [
        (CREATE.to_owned(), "POST"),
        (format!("/identities/{id}/:issueAccessToken?{v}"), "POST"),
        (format!("/identities/{id}/:revokeAccessTokens?{v}"), "POST"),
        (format!("/identities/{id}?{v}"), "DELETE"),
        (format!("/identities/{id}?api-version=2025-03-02-preview"), "GET"),
        (format!("/teamsUser/:exchangeAccessToken?{v}"), "POST"),
        ("/access/teamsExtension/:exchangeAccessToken?api-version=2025-06-30".to_owned(), "POST"),
        ("/access/entra/:exchangeAccessToken?api-version=2025-03-02-preview".to_owned(), "POST"),
        ("/access/entra/assignments?api-version=2025-03-02-preview".to_owned(), "PATCH"),
        ("/access/teamsExtension/tenants/t/assignments/o?api-version=2025-06-30".to_owned(), "PUT"),
        ("/accessTokens/:validate".to_owned(), "POST"),
        ("/.well-known/jwks.json".to_owned(), "GET"),
        ("/openapi/2023-10-01.json".to_owned(), "GET"),
    ];
    for (path, method) in &cases {
        let r = preflight(&s, path, method, ORIGIN).await;
        assert_preflight_ok(&r, method, "*", &format!("{method} {path}"));
    }
    // Nothing was created by the preflights.
    assert_eq!(s.inner().state().store().count_identities().await.unwrap(), 0);
}

#[tokio::test]
async fn every_answer_carries_the_cors_headers() {
    let s = start(|_| {}).await;
    let with_origin = |m: Method, p: &str| s.request(m, p).header("origin", ORIGIN);

    let r = with_origin(Method::POST, CREATE)
        .json(&json!({"createTokenWithScopes": ["chat"]}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_readable(&r, "*", "create");
    let id = r.json["identity"]["id"].as_str().unwrap().to_owned();
    let token = r.json["accessToken"]["token"].as_str().unwrap().to_owned();

    let r = with_origin(Method::POST, "/accessTokens/:validate")
        .json(&json!({"token": token}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_readable(&r, "*", "validate");
    for path in ["/.well-known/jwks.json", "/openapi/2023-10-01.json"] {
        let r = with_origin(Method::GET, path).unsigned().send().await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_readable(&r, "*", path);
    }

    // Errors, with ACS's envelope and correlation headers a page can read.
    let r = with_origin(Method::POST, CREATE)
        .unsigned()
        .header("x-ms-client-request-id", "c-1")
        .send()
        .await;
    r.assert_error(401, "Denied");
    assert_readable(&r, "*", "401");
    assert_eq!(r.header("x-ms-client-request-id"), Some("c-1"));
    assert!(r.header("ms-cv").is_some());
    let path = format!("/identities/{}/:issueAccessToken?api-version=2023-10-01", encode_id(&id));
    let r = with_origin(Method::POST, &path).json(&json!({"scopes": []})).send().await;
    r.assert_error(400, "ValidationError");
    assert_readable(&r, "*", "400");
    let r = with_origin(Method::POST, "/identities?api-version=1999-01-01")
        .json(&json!({}))
        .send()
        .await;
    r.assert_error(400, "UnsupportedApiVersion");
    assert_readable(&r, "*", "api-version");
    let r = with_origin(Method::GET, "/nowhere").unsigned().send().await;
    r.assert_error(404, "NotFound");
    assert_readable(&r, "*", "404");
    let r = with_origin(Method::PUT, CREATE).json(&json!({})).send().await;
    r.assert_error(405, "MethodNotAllowed");
    assert_readable(&r, "*", "405");
    let r = with_origin(Method::POST, CREATE).body(vec![b' '; 70_000]).send().await;
    r.assert_error(413, "PayloadTooLarge");
    assert_readable(&r, "*", "413");
    let limit = Config::default().max_header_bytes;
    let r =
        with_origin(Method::POST, CREATE).header("x-padding", &"a".repeat(limit + 1)).send().await;
    r.assert_error(431, "RequestHeaderFieldsTooLarge");
    assert_readable(&r, "*", "431");
}

#[tokio::test]
async fn preflights_do_not_count_against_throttling() {
    let s = TestServer::start_throttled(ThrottleClass::CreateIdentity, 1, 600).await;
    for _ in 0..5 {
        assert_preflight_ok(&preflight(&s, CREATE, "POST", ORIGIN).await, "POST", "*", "before");
    }
    let create = || s.request(Method::POST, CREATE).header("origin", ORIGIN).json(&json!({}));
    let r = create().send().await;
    assert_eq!(r.status, StatusCode::CREATED, "the preflights used the window: {}", r.text);
    let r = create().send().await;
    r.assert_error(429, "TooManyRequests");
    assert!(r.header("retry-after").is_some());
    assert_readable(&r, "*", "429");
    // Throttled or not, the browser still gets its preflight answered.
    assert_preflight_ok(&preflight(&s, CREATE, "POST", ORIGIN).await, "POST", "*", "after");
}

#[tokio::test]
async fn preflights_are_not_audited() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = AuditDestination::File(path.clone());
    let s = start(move |c| c.audit_log = audit).await;
    let id = s.create_user().await;
    let revoke =
        format!("/identities/{}/:revokeAccessTokens?api-version=2023-10-01", encode_id(&id));
    for _ in 0..3 {
        preflight(&s, CREATE, "POST", ORIGIN).await;
        preflight(&s, &revoke, "POST", ORIGIN).await;
    }
    s.shutdown().await;
    let text = std::fs::read_to_string(&path).expect("audit log written");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "only the create is an operation:\n{text}");
    assert_eq!(lines[0]["operation"], "identity.create");
}

#[tokio::test]
async fn limit_answers_carry_the_cors_headers() {
    let s = start(|c| c.request_timeout_seconds = 1).await;

    // 408: a body that never completes, from a page's origin.
    let mut stream = TcpStream::connect(http_addr(&s)).await.unwrap();
    let head = format!(
        "POST {CREATE} HTTP/1.1\r\nhost: localhost\r\norigin: {ORIGIN}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let r = timeout(GENEROUS, read_response(&mut stream)).await.unwrap().expect("a 408");
    assert_eq!(r.status, 408, "{r:?}");
    assert_eq!(r.json()["error"]["code"], "RequestTimeout");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{r:?}");
    assert!(r.header("access-control-expose-headers").is_some_and(|h| h.contains("ms-cv")));

    // 503: two requests held in flight, the next one refused at once.
    let s = start(|c| {
        c.max_in_flight_requests = 2;
        c.request_timeout_seconds = 120;
    })
    .await;
    let held = vec![hold_a_request(http_addr(&s)).await, hold_a_request(http_addr(&s)).await];
    let refused = healthz_until_refused(&s, Some(ORIGIN)).await;
    refused.assert_error(503, "ServiceUnavailable");
    assert_readable(&refused, "*", "503");
    // Preflights are answered before the in-flight limit.
    assert_preflight_ok(&preflight(&s, CREATE, "POST", ORIGIN).await, "POST", "*", "busy");
    drop(held);
}

#[tokio::test]
async fn a_list_restricts_origins_and_others_get_no_cors_headers() {
    let s = start(|c| {
        c.cors_allowed_origins =
            vec!["HTTP://LocalHost:3000/".to_owned(), "https://app.example:443".to_owned()];
    })
    .await;
    for origin in [ORIGIN, "https://app.example"] {
        let r = preflight(&s, CREATE, "POST", origin).await;
        assert_preflight_ok(&r, "POST", origin, origin);
        assert!(list(&r, "vary").contains(&"origin".to_owned()), "{:?}", r.headers);
        let r =
            s.request(Method::POST, CREATE).header("origin", origin).json(&json!({})).send().await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_readable(&r, origin, origin);
    }
    for origin in ["http://localhost:3001", "https://evil.example", "null"] {
        let r = preflight(&s, CREATE, "POST", origin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{origin}");
        assert_eq!(cors_headers(&r), Vec::<String>::new(), "{origin}");
        // The request itself (as a non-browser client may still send it) is served, with
        // nothing that lets a page read it.
        let r =
            s.request(Method::POST, CREATE).header("origin", origin).json(&json!({})).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "{origin}");
        assert_eq!(cors_headers(&r), Vec::<String>::new(), "{origin}");
        let r = s.request(Method::GET, "/nowhere").unsigned().header("origin", origin).send().await;
        r.assert_error(404, "NotFound");
        assert_eq!(cors_headers(&r), Vec::<String>::new(), "{origin}");
    }
}

#[tokio::test]
async fn an_empty_list_turns_cors_off() {
    let s = start(|c| c.cors_allowed_origins = Vec::new()).await;
    let r = preflight(&s, CREATE, "POST", ORIGIN).await;
    r.assert_error(405, "MethodNotAllowed");
    assert_eq!(cors_headers(&r), Vec::<String>::new());
    let r = s.request(Method::POST, CREATE).header("origin", ORIGIN).json(&json!({})).send().await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(cors_headers(&r), Vec::<String>::new());
}

#[tokio::test]
async fn options_that_are_not_preflights_are_not_answered_as_preflights() {
    let s = start(|_| {}).await;
    // No Access-Control-Request-Method (with or without Origin): ACS's 405, as without CORS.
    for origin in [None, Some(ORIGIN)] {
        let mut req = s.request(Method::OPTIONS, CREATE).unsigned();
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let r = req.send().await;
        r.assert_error(405, "MethodNotAllowed");
        assert!(r.header("ms-cv").is_some(), "{origin:?}");
        assert_eq!(r.header("access-control-allow-methods"), None, "{origin:?}");
    }
    let r = s.request(Method::OPTIONS, "/nowhere").unsigned().send().await;
    r.assert_error(404, "NotFound");
}
