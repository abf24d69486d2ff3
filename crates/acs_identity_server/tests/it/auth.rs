//! HMAC-SHA256 authentication: what is accepted and what gets 401.

use acs_identity_core::clock::{Clock as _, SystemClock};
use acs_identity_core::hmac::KeyName;
use acs_identity_testkit::{encode_id, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;
use time::Duration;

const CREATE: &str = "/identities?api-version=2023-10-01";

#[tokio::test]
async fn primary_and_secondary_keys_are_accepted() {
    let s = TestServer::start().await;
    for name in [KeyName::Primary, KeyName::Secondary] {
        let r = s.request(Method::POST, CREATE).key(&s.key(name)).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "{name:?}: {}", r.text);
    }
}

#[tokio::test]
async fn sdk_host_and_path_variants_are_accepted() {
    let s = TestServer::start().await;
    let id = s.create_user().await;
    let sent = format!("/identities/{}/:issueAccessToken?api-version=2023-10-01", encode_id(&id));
    let decoded = format!("/identities/{id}/:issueAccessToken?api-version=2023-10-01");
    let host = s.endpoint().trim_start_matches("https://").to_owned();
    let bare = host.split(':').next().unwrap().to_owned();
    let doubled = format!("{host}:{}", host.rsplit(':').next().unwrap());
    let cases: Vec<(&str, Option<&str>, Option<&str>)> = vec![
        ("python async: decoded path", Some(decoded.as_str()), None),
        ("java: host without port", None, Some(bare.as_str())),
        ("as sent", None, None),
    ];
    for (name, path, sign_host) in cases {
        let mut req = s.request(Method::POST, &sent).json(&json!({"scopes": ["chat"]}));
        if let Some(p) = path {
            req = req.sign_path(p);
        }
        if let Some(h) = sign_host {
            req = req.sign_host(h);
        }
        let r = req.send().await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text);
    }
    // Node's JS SDK signs and sends `host:port:port` as the Host header.
    let r = s
        .request(Method::POST, &sent)
        .json(&json!({"scopes": ["chat"]}))
        .sign_host(&doubled)
        .header("host", &doubled)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "js host:port:port: {}", r.text);
}

/// The JS SDK's browser build (`@azure/communication-common` before 2.4.2) signs
/// `host:port:port` but cannot set `Host`, so the browser sends `host:port`.
#[tokio::test]
async fn the_js_browser_signing_form_is_accepted() {
    let s = TestServer::start().await;
    let host = s.endpoint().trim_start_matches("https://").to_owned();
    let port = host.rsplit(':').next().unwrap().to_owned();
    let doubled = format!("{host}:{port}");
    let create = |sign_host: &str| {
        s.request(Method::POST, CREATE)
            .json(&json!({"createTokenWithScopes": ["chat"]}))
            .header("origin", "http://localhost:3000")
            .sign_host(sign_host)
    };
    let r = create(&doubled).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["identity"]["id"].as_str().unwrap().to_owned();
    let path = format!("/identities/{}?api-version=2023-10-01", encode_id(&id));
    let r = s.request(Method::DELETE, &path).sign_host(&doubled).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    // Over plain HTTP too (another port, the same form).
    let http_host = s.http_endpoint().trim_start_matches("http://").to_owned();
    let http_port = http_host.rsplit(':').next().unwrap().to_owned();
    let r = s
        .request(Method::POST, CREATE)
        .plain_http()
        .sign_host(&format!("{http_host}:{http_port}"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "plain HTTP: {}", r.text);
    // Any other repetition, or another port, is not the host that was reached.
    for wrong in [format!("{doubled}:{port}"), format!("{host}:1"), "127.0.0.1:1:1".to_owned()] {
        let r = create(&wrong).send().await;
        r.assert_error(401, "Denied");
    }
}

/// How an SDK that the suite cannot run (its package is on NuGet or Maven) shapes a
/// request, from its source (WIRE.md §7): .NET `Azure.Communication.Identity`
/// (`HMACAuthenticationPolicy.cs`: `Uri.Authority`, `Uri.PathAndQuery`; default
/// `ServiceVersion`), Java `azure-communication-identity` 1.6.0 (`HmacAuthenticationPolicy.java`:
/// `URL.getHost()`, which it also sends as `host`; azure-core's `UrlEscapers.PATH_ESCAPER`).
struct Shape {
    sdk: &'static str,
    api_version: &'static str,
    /// The raw id's `:` goes out as `%3A` (.NET) or as is (Java's azure-core path escaper).
    escapes_colons: bool,
    /// Signs the host without its port and sends that as `Host` (Java's `URL.getHost()`);
    /// otherwise signs the authority, port included, as sent (.NET's `Uri.Authority`).
    port_less_host: bool,
}

const SHAPES: [Shape; 3] = [
    Shape {
        sdk: ".NET, stable default",
        api_version: "2023-10-01",
        escapes_colons: true,
        port_less_host: false,
    },
    Shape {
        sdk: ".NET 1.4.0-beta.1 default",
        api_version: "2025-03-02-preview",
        escapes_colons: true,
        port_less_host: false,
    },
    Shape {
        sdk: "Java 1.6.0 default",
        api_version: "2023-10-01",
        escapes_colons: false,
        port_less_host: true,
    },
];

async fn send_shaped(
    s: &TestServer,
    shape: &Shape,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> acs_identity_testkit::TestResponse {
    let mut req = s.request(method, path);
    if let Some(body) = &body {
        req = req.json(body);
    }
    if shape.port_less_host {
        let authority = s.endpoint().trim_start_matches("https://").to_owned();
        let host = authority.rsplit_once(':').expect("a port").0.to_owned();
        req = req.sign_host(&host).header("host", &host);
    }
    req.send().await
}

/// Every operation of the .NET and Java identity clients, shaped as their sources shape
/// it, is served: create with a token, issue, revoke, delete (then the deleted user is
/// gone, so the path's id was understood, not just the signature), and the .NET beta's
/// custom id and user detail.
#[tokio::test]
async fn dotnet_and_java_request_shapes_are_accepted() {
    let s = TestServer::start().await;
    for shape in &SHAPES {
        let (sdk, v) = (shape.sdk, shape.api_version);
        let body = json!({"createTokenWithScopes": ["chat", "voip"], "expiresInMinutes": 60});
        let r = send_shaped(
            &s,
            shape,
            Method::POST,
            &format!("/identities?api-version={v}"),
            Some(body),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{sdk} create: {}", r.text);
        let id = r.json["identity"]["id"].as_str().expect("id").to_owned();
        assert!(r.json["accessToken"]["token"].is_string(), "{sdk}: {}", r.text);
        let segment = if shape.escapes_colons { encode_id(&id) } else { id.clone() };
        assert_eq!(segment.contains(':'), !shape.escapes_colons);

        let issue = format!("/identities/{segment}/:issueAccessToken?api-version={v}");
        let body = json!({"scopes": ["chat"], "expiresInMinutes": 1440});
        let r = send_shaped(&s, shape, Method::POST, &issue, Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "{sdk} issue: {}", r.text);
        let revoke = format!("/identities/{segment}/:revokeAccessTokens?api-version={v}");
        let r = send_shaped(&s, shape, Method::POST, &revoke, None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{sdk} revoke: {}", r.text);
        let user = format!("/identities/{segment}?api-version={v}");
        if v == "2025-03-02-preview" {
            let r = send_shaped(&s, shape, Method::GET, &user, None).await;
            assert_eq!(r.status, StatusCode::OK, "{sdk} get: {}", r.text);
            assert_eq!(r.json["id"], id.as_str(), "{sdk}: {}", r.text);
            let custom = json!({"customId": format!("{sdk} user")});
            let path = format!("/identities?api-version={v}");
            let a = send_shaped(&s, shape, Method::POST, &path, Some(custom.clone())).await;
            let b = send_shaped(&s, shape, Method::POST, &path, Some(custom)).await;
            assert_eq!(a.status, StatusCode::CREATED, "{sdk} customId: {}", a.text);
            assert_eq!(a.json["identity"]["id"], b.json["identity"]["id"], "{sdk}: one user");
        }
        let r = send_shaped(&s, shape, Method::DELETE, &user, None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{sdk} delete: {}", r.text);
        let r = send_shaped(&s, shape, Method::POST, &issue, Some(body)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{sdk} issue after delete: {}", r.text);
    }
}

#[tokio::test]
async fn date_header_may_carry_the_signed_date() {
    use acs_identity_core::hmac::{content_hash, string_to_sign, AccessKey};
    use base64::Engine as _;
    let s = TestServer::start().await;
    // Older clients sign `SignedHeaders=date;host;x-ms-content-sha256` and send `Date`.
    let date = acs_identity_core::time_format::http_date(SystemClock.now());
    let host = s.endpoint().trim_start_matches("https://").to_owned();
    let hash = content_hash(b"");
    let raw = base64::engine::general_purpose::STANDARD.decode(s.key(KeyName::Primary)).unwrap();
    let sig = AccessKey::new(KeyName::Primary, &raw)
        .sign(&string_to_sign("POST", CREATE, &date, &host, &hash));
    let auth = format!("HMAC-SHA256 SignedHeaders=date;host;x-ms-content-sha256&Signature={sig}");
    let r = s
        .request(Method::POST, CREATE)
        .unsigned()
        .header("date", &date)
        .header("x-ms-content-sha256", &hash)
        .header("authorization", &auth)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The same signature without the `Date` header is refused.
    let r = s
        .request(Method::POST, CREATE)
        .unsigned()
        .header("x-ms-content-sha256", &hash)
        .header("authorization", &auth)
        .send()
        .await;
    r.assert_error(401, "Denied");
}

#[tokio::test]
async fn every_tampering_is_refused_with_401() {
    let s = TestServer::start().await;
    let other = TestServer::start().await;
    let now = SystemClock.now();
    let cases = vec![
        ("no auth", s.request(Method::POST, CREATE).unsigned()),
        (
            "wrong key",
            s.request(Method::POST, CREATE).key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        ),
        (
            "another resource's key",
            s.request(Method::POST, CREATE).key(&other.key(KeyName::Primary)),
        ),
        ("16 min in the past", s.request(Method::POST, CREATE).date(now - Duration::minutes(16))),
        ("16 min in the future", s.request(Method::POST, CREATE).date(now + Duration::minutes(16))),
        ("missing x-ms-date", s.request(Method::POST, CREATE).without_header("x-ms-date")),
        (
            "missing content hash",
            s.request(Method::POST, CREATE).without_header("x-ms-content-sha256"),
        ),
        ("missing authorization", s.request(Method::POST, CREATE).without_header("authorization")),
        (
            "tampered body",
            s.request(Method::POST, CREATE)
                .json(&json!({}))
                .header("x-ms-content-sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
        ),
        (
            "tampered query",
            s.request(Method::POST, CREATE).sign_path("/identities?api-version=2022-10-01"),
        ),
        (
            "tampered path",
            s.request(Method::POST, CREATE).sign_path("/accessTokens?api-version=2023-10-01"),
        ),
        (
            "tampered host",
            s.request(Method::POST, CREATE).sign_host("contoso.communication.azure.com"),
        ),
        (
            "garbage authorization",
            s.request(Method::POST, CREATE).header("authorization", "HMAC-SHA256 nonsense"),
        ),
        (
            "unknown scheme",
            s.request(Method::POST, CREATE).header("authorization", "Basic dXNlcjpwYXNz"),
        ),
        (
            "bearer without issuers",
            s.request(Method::POST, CREATE).header("authorization", "Bearer abc.def.ghi"),
        ),
        ("bad date", s.request(Method::POST, CREATE).header("x-ms-date", "yesterday")),
    ];
    for (name, req) in cases {
        let r = req.send().await;
        let msg = r.assert_error(401, "Denied");
        assert_eq!(msg, "Denied by the resource provider.", "{name}");
    }
    // Within the skew window is fine.
    let r = s.request(Method::POST, CREATE).date(now - Duration::minutes(14)).send().await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn refused_requests_change_nothing() {
    let s = TestServer::start().await;
    let before = s.inner().state().store().count_identities().await.unwrap();
    let r = s
        .request(Method::POST, CREATE)
        .key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .send()
        .await;
    r.assert_error(401, "Denied");
    assert_eq!(s.inner().state().store().count_identities().await.unwrap(), before);
}

#[tokio::test]
async fn health_and_jwks_need_no_auth() {
    let s = TestServer::start().await;
    let r = s.request(Method::GET, "/healthz").unsigned().send().await;
    assert_eq!(r.status, StatusCode::OK);
    let r = s.request(Method::GET, "/.well-known/jwks.json").unsigned().send().await;
    assert_eq!(r.status, StatusCode::OK);
    let keys = r.json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["alg"], "ES256");
    let id = s.create_user().await;
    let token = s.issue_token(&id).await;
    assert_eq!(acs_identity_testkit::jwt_header(&token)["kid"], keys[0]["kid"]);
}
