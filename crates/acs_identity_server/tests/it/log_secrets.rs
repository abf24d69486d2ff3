//! Secrets never reach the logs: a representative set of requests (HMAC with both keys,
//! bad signatures, issue, revoke, validate, bad tokens, Entra bearer tokens and the Teams
//! exchange) runs with every event at TRACE captured, and no access key, signature sent,
//! issued token or Entra token may appear in what was captured.

use acs_identity_core::clock::Clock as _;
use std::io;
use std::sync::{Arc, Mutex};

use acs_identity_core::hmac::{
    authorization_header, content_hash, string_to_sign, AccessKey, KeyName,
};
use acs_identity_core::time_format::http_date;
use acs_identity_core::SystemClock;
use acs_identity_testkit::issuer::API_AUDIENCE;
use acs_identity_testkit::{
    identity_path, issue_path, revoke_path, uuid_like, TestIssuer, TestRequest, TestResponse,
    TestServer,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// Every formatted event, appended to one shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything secret that was sent or received, with a label for the failure message.
#[derive(Default)]
pub(crate) struct Secrets(pub(crate) Vec<(String, String)>);

impl Secrets {
    pub(crate) fn add(&mut self, label: &str, value: &str) {
        assert!(value.len() >= 16, "{label} is too short to search for: {value:?}");
        self.0.push((label.to_owned(), value.to_owned()));
    }

    /// A JWT: the whole token and its signature part (the part nobody else can make).
    pub(crate) fn add_token(&mut self, label: &str, token: &str) {
        self.add(label, token);
        let sig = token.rsplit('.').next().unwrap_or_default();
        if sig.len() >= 16 {
            self.add(&format!("{label} (signature part)"), sig);
        }
    }

    /// The token `r` answered with at `pointer` (`/token`, `/accessToken/token`), as
    /// [`add_token`](Self::add_token).
    pub(crate) fn add_answered_token(&mut self, label: &str, r: &TestResponse, pointer: &str) {
        let token = r.json.pointer(pointer).and_then(Value::as_str);
        self.add_token(label, token.unwrap_or("missing token...."));
    }
}

/// Signs requests here with a given key, so that every signature sent is known: each one
/// joins `secrets`, which starts with the server's access keys and connection string.
pub(crate) struct Signer<'a> {
    server: &'a TestServer,
    pub(crate) secrets: Secrets,
    /// The server's primary and secondary access keys, base64.
    pub(crate) keys: (String, String),
}

impl<'a> Signer<'a> {
    pub(crate) fn new(server: &'a TestServer) -> Self {
        let keys = (server.key(KeyName::Primary), server.key(KeyName::Secondary));
        let mut secrets = Secrets::default();
        secrets.add("primary key", &keys.0);
        secrets.add("secondary key", &keys.1);
        secrets.add("connection string", &server.connection_string());
        Self { server, secrets, keys }
    }

    /// A request whose HMAC headers are computed here with `key_b64`.
    pub(crate) fn request(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: &Value,
        key_b64: &str,
    ) -> TestRequest<'a> {
        let bytes = serde_json::to_vec(body).expect("json");
        let date = http_date(SystemClock.now());
        let host = self.server.endpoint().split("://").nth(1).expect("host").to_owned();
        let hash = content_hash(&bytes);
        let sts = string_to_sign(method.as_str(), path_and_query, &date, &host, &hash);
        let key = AccessKey::new(KeyName::Primary, &STANDARD.decode(key_b64).expect("base64 key"));
        let signature = key.sign(&sts);
        self.secrets.add(&format!("signature of {method} {path_and_query}"), &signature);
        self.server
            .request(method, path_and_query)
            .unsigned()
            .body(bytes)
            .header("content-type", "application/json")
            .header("x-ms-date", &date)
            .header("x-ms-content-sha256", &hash)
            .header("authorization", &authorization_header(&signature))
    }

    /// Sends a [`request`](Self::request).
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: &Value,
        key_b64: &str,
    ) -> TestResponse {
        self.request(method, path_and_query, body, key_b64).send().await
    }
}

/// Sends a request with a given `Authorization` header value (valid date and hash).
async fn with_authorization(s: &TestServer, authorization: &str) -> TestResponse {
    let date = http_date(SystemClock.now());
    s.request(Method::POST, "/identities?api-version=2023-10-01")
        .unsigned()
        .body(b"{}".to_vec())
        .header("content-type", "application/json")
        .header("x-ms-date", &date)
        .header("x-ms-content-sha256", &content_hash(b"{}"))
        .header("authorization", authorization)
        .send()
        .await
}

async fn bearer(s: &TestServer, token: &str) -> TestResponse {
    s.request(Method::POST, "/identities?api-version=2023-10-01")
        .unsigned()
        .json(&json!({}))
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await
}

/// Flips one character in the middle of `s` to another of the same alphabet.
pub(crate) fn tamper(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test]
async fn no_key_signature_or_token_reaches_the_logs() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_writer(capture.clone())
        .finish();
    // `#[tokio::test]` runs the server, the issuer and the client on this one thread, so a
    // thread-local default sees every event they emit.
    let _guard = tracing::subscriber::set_default(subscriber);

    let issuer = TestIssuer::start().await;
    let cfg = issuer.config_file();
    let s = TestServer::start_with(move |c| c.entra.issuers.push(cfg), Arc::new(SystemClock)).await;
    let mut signer = Signer::new(&s);
    let (primary, secondary) = signer.keys.clone();

    // Create with either key, and create-with-token.
    let r =
        signer.send(Method::POST, "/identities?api-version=2023-10-01", &json!({}), &primary).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let user = r.json["identity"]["id"].as_str().expect("id").to_owned();
    let r = signer
        .send(Method::POST, "/identities?api-version=2023-10-01", &json!({}), &secondary)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = signer
        .send(
            Method::POST,
            "/identities?api-version=2023-10-01",
            &json!({"createTokenWithScopes": ["chat", "voip"], "expiresInMinutes": 60}),
            &primary,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    signer
        .secrets
        .add_token("token from create", r.json["accessToken"]["token"].as_str().expect("token"));

    // Issue, validate, revoke, validate the revoked token, get, delete.
    let r = signer
        .send(Method::POST, &issue_path(&user), &json!({"scopes": ["chat"]}), &secondary)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.json["token"].as_str().expect("token").to_owned();
    signer.secrets.add_token("issued token", &token);
    let r = signer
        .send(Method::POST, "/accessTokens/:validate", &json!({"token": token}), &primary)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = signer.send(Method::POST, &revoke_path(&user), &json!({}), &primary).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = signer
        .send(Method::POST, "/accessTokens/:validate", &json!({"token": token}), &primary)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Bad tokens at the validation endpoint.
    for bad in [tamper(&token), format!("{token}x"), "not.a.token".to_owned()] {
        let r = signer
            .send(Method::POST, "/accessTokens/:validate", &json!({"token": bad}), &primary)
            .await;
        assert!(r.status.is_success() || r.status.is_client_error(), "{}", r.text);
    }
    signer.secrets.add("tampered token", &tamper(&token));

    // Bad signatures: another key, one flipped character, truncated, not base64, a tampered body.
    let other_key = STANDARD.encode([7u8; 32]);
    signer.secrets.add("unknown key", &other_key);
    let r = signer
        .send(Method::POST, "/identities?api-version=2023-10-01", &json!({}), &other_key)
        .await;
    r.assert_error(401, "Denied");
    let date = http_date(SystemClock.now());
    let host = s.endpoint().split("://").nth(1).expect("host").to_owned();
    let sts = string_to_sign(
        "POST",
        "/identities?api-version=2023-10-01",
        &date,
        &host,
        &content_hash(b"{}"),
    );
    let good =
        AccessKey::new(KeyName::Primary, &STANDARD.decode(&primary).expect("key")).sign(&sts);
    for bad_sig in [tamper(&good), good[..good.len() - 4].to_owned(), format!("!{}", &good[1..])] {
        signer.secrets.add("bad signature", &bad_sig);
        let r = with_authorization(&s, &authorization_header(&bad_sig)).await;
        r.assert_error(401, "Denied");
    }
    let r = with_authorization(&s, &format!("HMAC-SHA256 Signature={good}")).await;
    r.assert_error(401, "Denied");
    let r = s
        .request(Method::POST, "/identities?api-version=2023-10-01")
        .json(&json!({}))
        .header("x-ms-content-sha256", &content_hash(b"{\"tampered\":1}"))
        .send()
        .await;
    r.assert_error(401, "Denied");
    let r = s
        .request(Method::POST, "/identities?api-version=2023-10-01")
        .date(SystemClock.now() - Duration::hours(1))
        .json(&json!({}))
        .send()
        .await;
    r.assert_error(401, "Denied");

    // Entra bearer tokens: valid, forged, expired, wrong audience, and over plain HTTP.
    let app = uuid_like();
    let good_entra =
        issuer.mint(&issuer.claims(API_AUDIENCE, &uuid_like(), &app, "user_impersonation"));
    signer.secrets.add_token("Entra token", &good_entra);
    let r = bearer(&s, &good_entra).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let forged = issuer.mint_forged(&issuer.claims(API_AUDIENCE, &uuid_like(), &app, ""));
    signer.secrets.add_token("forged Entra token", &forged);
    bearer(&s, &forged).await.assert_error(401, "Denied");
    let mut expired = issuer.claims(API_AUDIENCE, &uuid_like(), &app, "");
    expired["exp"] = (SystemClock.now() - Duration::minutes(10)).unix_timestamp().into();
    let expired = issuer.mint(&expired);
    signer.secrets.add_token("expired Entra token", &expired);
    bearer(&s, &expired).await.assert_error(401, "Denied");
    let wrong_aud =
        issuer.mint(&issuer.claims("https://graph.microsoft.com", &uuid_like(), &app, ""));
    signer.secrets.add_token("Entra token for another audience", &wrong_aud);
    bearer(&s, &wrong_aud).await.assert_error(401, "Denied");
    let r = s
        .request(Method::POST, "/identities?api-version=2023-10-01")
        .unsigned()
        .plain_http()
        .json(&json!({}))
        .header("authorization", &format!("Bearer {good_entra}"))
        .send()
        .await;
    r.assert_error(401, "Denied");

    // The Teams user exchange, accepted and refused.
    let oid = uuid_like();
    let teams = issuer.teams_token(&oid, &app, "Teams.ManageCalls");
    signer.secrets.add_token("Teams Entra token", &teams);
    let exchange = "/teamsUser/:exchangeAccessToken?api-version=2023-10-01";
    let r = signer
        .send(
            Method::POST,
            exchange,
            &json!({"token": teams, "appId": app, "userId": oid}),
            &primary,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    signer.secrets.add_token("exchanged token", r.json["token"].as_str().expect("token"));
    let r = signer
        .send(
            Method::POST,
            exchange,
            &json!({"token": tamper(&teams), "appId": app, "userId": oid}),
            &primary,
        )
        .await;
    r.assert_error(401, "InvalidAccessToken");

    // Delete (so the log also has a 204 from another route).
    let r = signer
        .send(Method::DELETE, &identity_path(&user, "2023-10-01"), &json!({}), &primary)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    let secrets = signer.secrets;
    s.shutdown().await;
    let logs = capture.text();
    if std::env::var_os("ACSID_SHOW_CAPTURED_LOGS").is_some() {
        eprintln!("{logs}");
    }

    // The capture really captured: the request log and the denials are there.
    assert!(logs.contains("acs_identity::request"), "no request log line captured:\n{logs}");
    assert!(logs.contains("status=201"), "no 201 captured:\n{logs}");
    assert!(logs.contains("status=401"), "no 401 captured:\n{logs}");
    assert!(logs.contains("path=/accessTokens/:validate"), "no validate line:\n{logs}");
    assert!(logs.contains("request denied"), "no denial line captured:\n{logs}");
    assert!(logs.contains("signature mismatch"), "no HMAC denial reason:\n{logs}");
    assert!(logs.contains("Teams user token refused"), "no exchange refusal:\n{logs}");
    let lines = logs.lines().count();
    assert!(lines >= 30, "only {lines} log lines captured:\n{logs}");

    for (label, secret) in &secrets.0 {
        assert!(!logs.contains(secret.as_str()), "{label} appears in the logs:\n{logs}");
    }
    // No JWT-looking text at all (`eyJ` is base64 of `{"`).
    assert!(!logs.contains("eyJ"), "something JWT-shaped appears in the logs:\n{logs}");
    eprintln!("log_secrets: {lines} log lines, {} secrets checked", secrets.0.len());
}
