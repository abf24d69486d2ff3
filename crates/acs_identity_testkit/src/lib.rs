//! Test kit: the real service on `127.0.0.1:0`, and requests signed like the SDKs sign them.
//!
//! Only ever a dev-dependency.

pub mod issuer;

pub use acs_identity_server::throttle::ThrottleClass;
pub use issuer::{uuid_like, TestIssuer};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use acs_identity_core::hmac::{
    authorization_header, content_hash, string_to_sign, AccessKey, KeyName,
};
use acs_identity_core::time_format::http_date;
use acs_identity_core::{Clock, SystemClock};
use acs_identity_server::serve::Server;
use acs_identity_server::Config;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use time::OffsetDateTime;

/// A running service in a temporary data directory.
#[derive(Debug)]
pub struct TestServer {
    server: Option<Server>,
    dir: Arc<tempfile::TempDir>,
    config: Config,
    clock: Arc<dyn Clock>,
    https: reqwest::Client,
    http: reqwest::Client,
}

impl TestServer {
    /// Starts a service with defaults, HTTPS and HTTP on ephemeral ports.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}, Arc::new(SystemClock)).await
    }

    /// Starts a service that answers `op` at most `max_requests` times per `window_seconds`
    /// (then 429 with `Retry-After`).
    pub async fn start_throttled(
        op: ThrottleClass,
        max_requests: u32,
        window_seconds: u32,
    ) -> TestServer {
        let limit = acs_identity_server::throttle::Limit { window_seconds, max_requests };
        let throttle = move |c: &mut Config| {
            c.throttle.limits.insert(op, limit);
        };
        Self::start_with(throttle, Arc::new(SystemClock)).await
    }

    /// Starts a service that trusts `issuer`'s tokens (its JWKS by URL).
    pub async fn start_trusting(issuer: &TestIssuer) -> TestServer {
        let trusted = issuer.config_url();
        Self::start_with(move |c| c.entra.issuers.push(trusted), Arc::new(SystemClock)).await
    }

    /// Starts a fresh issuer and a service that trusts it.
    pub async fn start_with_trusted_issuer() -> (TestServer, TestIssuer) {
        let issuer = TestIssuer::start().await;
        let server = Self::start_trusting(&issuer).await;
        (server, issuer)
    }

    /// A node on the PostgreSQL database at `url`, with the system clock.
    pub async fn start_on_database(url: &str) -> TestServer {
        let url = acs_identity_store::DatabaseUrl::new(url);
        Self::start_with(move |c| c.database_url = Some(url), Arc::new(SystemClock)).await
    }

    /// Starts a service after `tweak` adjusted its configuration, with `clock`.
    pub async fn start_with(tweak: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> TestServer {
        capture_logs();
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut config = Config {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse().expect("addr"),
            http_listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..Config::default()
        };
        tweak(&mut config);
        Self::start_in(dir, config, clock).await
    }

    async fn start_in(
        dir: Arc<tempfile::TempDir>,
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> TestServer {
        let server = Server::start_with_clock(&config, clock.clone()).await.expect("server starts");
        let ca = std::fs::read(server.ca_path().expect("dev CA")).expect("read CA");
        let https = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA pem"))
            .build()
            .expect("client");
        TestServer { server: Some(server), dir, config, clock, https, http: reqwest::Client::new() }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    /// Stops the service gracefully and starts it again on the same data directory
    /// (and the same ports when they are still free).
    pub async fn restart(mut self) -> TestServer {
        let https = self.server().https_addr();
        let http = self.server().http_addr();
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        let mut config = self.config.clone();
        config.listen = https;
        config.http_listen = http;
        let dir = self.dir.clone();
        let clock = self.clock.clone();
        drop(self);
        Self::start_in(dir, config, clock).await
    }

    /// Stops the service (waiting for in-flight requests) and starts it again on the same
    /// data directory, on new ephemeral ports.
    pub async fn restart_fresh_ports(mut self) -> TestServer {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.http_listen = Some("127.0.0.1:0".parse().expect("addr"));
        let dir = self.dir.clone();
        let clock = self.clock.clone();
        drop(self);
        Self::start_in(dir, config, clock).await
    }

    /// Stops the service gracefully.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// The running service.
    pub fn inner(&self) -> &Server {
        self.server()
    }

    /// `https://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        self.server().endpoint()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_endpoint(&self) -> String {
        self.server().http_endpoint().expect("http listener")
    }

    /// The development CA file.
    pub fn ca_path(&self) -> &Path {
        self.server().ca_path().expect("dev CA")
    }

    /// The primary connection string.
    pub fn connection_string(&self) -> String {
        self.server().connection_string()
    }

    /// The resource id.
    pub fn resource_id(&self) -> String {
        self.server().state().resource().to_string()
    }

    /// The base64 text of an access key.
    pub fn key(&self, name: KeyName) -> String {
        self.server().state().keys().encoded(name).expect("key").to_owned()
    }

    /// A request to the HTTPS endpoint, signed with the primary key.
    pub fn request(&self, method: Method, path_and_query: &str) -> TestRequest<'_> {
        TestRequest {
            server: self,
            method,
            path_and_query: path_and_query.to_owned(),
            body: Vec::new(),
            key: Some(self.key(KeyName::Primary)),
            date: None,
            sign_path: None,
            sign_host: None,
            plain_http: false,
            headers: Vec::new(),
            drop_headers: Vec::new(),
        }
    }

    /// Sends a request without a body, signed with the primary key.
    pub async fn send(&self, method: Method, path_and_query: &str) -> TestResponse {
        self.request(method, path_and_query).send().await
    }

    /// `POST` a JSON body.
    pub async fn post(&self, path_and_query: &str, body: Value) -> TestResponse {
        self.request(Method::POST, path_and_query).json(&body).send().await
    }

    /// Creates a user with `api-version` 2023-10-01 and returns its raw id.
    pub async fn create_user(&self) -> String {
        let r = self.post("/identities?api-version=2023-10-01", serde_json::json!({})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json["identity"]["id"].as_str().expect("id").to_owned()
    }

    /// Creates a user with `custom_id` and a `chat` token (api-version 2025-03-02-preview),
    /// expecting 201.
    pub async fn create_user_with_custom_id(&self, custom_id: &str) -> TestResponse {
        let body = serde_json::json!({"customId": custom_id, "createTokenWithScopes": ["chat"]});
        let r = self.post("/identities?api-version=2025-03-02-preview", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r
    }

    /// Issues a token for `raw_id` with scope `chat`.
    pub async fn issue_token(&self, raw_id: &str) -> String {
        let r = self.post(&issue_path(raw_id), serde_json::json!({"scopes": ["chat"]})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json["token"].as_str().expect("token").to_owned()
    }

    /// Revokes the tokens of `raw_id`, expecting 204.
    pub async fn revoke(&self, raw_id: &str) {
        let r = self.send(Method::POST, &revoke_path(raw_id)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }

    /// Deletes `raw_id`, expecting 204.
    pub async fn delete(&self, raw_id: &str) {
        let r = self.send(Method::DELETE, &identity_path(raw_id, "2023-10-01")).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }

    /// Checks that nothing acknowledged was lost: every user of `created` is still issued a
    /// token, and every token of `revoked` (with its user) is still revoked.
    pub async fn assert_kept(&self, created: &[String], revoked: &[(String, String)]) {
        for id in created {
            let r = self.post(&issue_path(id), serde_json::json!({"scopes": ["voip"]})).await;
            assert_eq!(r.status, StatusCode::OK, "user {id} lost: {}", r.text);
        }
        for (id, token) in revoked {
            let v = self.validate(token).await;
            assert_eq!(v["reason"], "revoked", "revoke of {id} lost: {v}");
        }
    }

    /// Asks the validation endpoint about `token`.
    pub async fn validate(&self, token: &str) -> Value {
        let r = self.post("/accessTokens/:validate", serde_json::json!({ "token": token })).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json
    }
}

/// The variable naming a directory where every test process that starts a service writes
/// all its log events (`cargo xtask test` sets it and then searches the files for secrets).
pub const LOG_DIR_ENV: &str = "ACSID_TEST_LOG_DIR";

/// When [`LOG_DIR_ENV`] is set, installs (once per process) a global subscriber that writes
/// every event of this workspace's crates, down to TRACE, and of sqlx, tower-http and
/// azure_core to `<dir>/<program>-<pid>.log`. Tests that install their own scoped subscriber
/// keep it on their thread.
fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(dir) = std::env::var_os(LOG_DIR_ENV).filter(|d| !d.is_empty()) else { return };
        let dir = PathBuf::from(dir);
        let program = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "test".to_owned());
        let path = dir.join(format!("{program}-{}.log", std::process::id()));
        let Ok(file) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::File::create(&path))
        else {
            return;
        };
        let filter = tracing_subscriber::EnvFilter::new(
            "warn,acs_identity=trace,acs_identity_core=trace,acs_identity_server=trace,\
             acs_identity_store=trace,acs_identity_testkit=trace,acs_common=trace,sqlx=debug,\
             tower_http=trace,azure_core=debug,typespec_client_core=debug",
        );
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// `POST /identities/{id}/:issueAccessToken` with api-version 2023-10-01.
pub fn issue_path(raw_id: &str) -> String {
    format!("/identities/{}/:issueAccessToken?api-version=2023-10-01", encode_id(raw_id))
}

/// `POST /identities/{id}/:revokeAccessTokens` with api-version 2023-10-01.
pub fn revoke_path(raw_id: &str) -> String {
    format!("/identities/{}/:revokeAccessTokens?api-version=2023-10-01", encode_id(raw_id))
}

/// `/identities/{id}` with `api_version`.
pub fn identity_path(raw_id: &str, api_version: &str) -> String {
    format!("/identities/{}?api-version={api_version}", encode_id(raw_id))
}

/// Percent-encodes a raw id for a path segment as the Python and JS SDKs do (`:` → `%3A`).
pub fn encode_id(raw_id: &str) -> String {
    let mut out = String::with_capacity(raw_id.len() * 2);
    for b in raw_id.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A request being built.
#[derive(Debug)]
pub struct TestRequest<'a> {
    server: &'a TestServer,
    method: Method,
    path_and_query: String,
    body: Vec<u8>,
    key: Option<String>,
    date: Option<OffsetDateTime>,
    sign_path: Option<String>,
    sign_host: Option<String>,
    plain_http: bool,
    headers: Vec<(String, String)>,
    drop_headers: Vec<String>,
}

impl TestRequest<'_> {
    /// Sets a JSON body (compact, as JS sends it).
    pub fn json(mut self, body: &Value) -> Self {
        self.body = serde_json::to_vec(body).expect("json");
        self
    }

    /// Sets raw body bytes.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Signs with this base64 key instead of the primary key.
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// Sends no authentication headers at all.
    pub fn unsigned(mut self) -> Self {
        self.key = None;
        self
    }

    /// Signs with this date.
    pub fn date(mut self, date: OffsetDateTime) -> Self {
        self.date = Some(date);
        self
    }

    /// Signs this path instead of the one sent.
    pub fn sign_path(mut self, path: &str) -> Self {
        self.sign_path = Some(path.to_owned());
        self
    }

    /// Signs this host instead of the one sent.
    pub fn sign_host(mut self, host: &str) -> Self {
        self.sign_host = Some(host.to_owned());
        self
    }

    /// Sends over plain HTTP.
    pub fn plain_http(mut self) -> Self {
        self.plain_http = true;
        self
    }

    /// Adds or replaces a header after signing.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Removes a header after signing.
    pub fn without_header(mut self, name: &str) -> Self {
        self.drop_headers.push(name.to_ascii_lowercase());
        self
    }

    /// Signs and sends; panics when the request cannot be sent.
    pub async fn send(self) -> TestResponse {
        self.try_send().await.expect("request sent")
    }

    /// Signs and sends; `None` when the connection fails.
    pub async fn try_send(self) -> Option<TestResponse> {
        let base =
            if self.plain_http { self.server.http_endpoint() } else { self.server.endpoint() };
        let url = format!("{base}{}", self.path_and_query);
        let host = base.split("://").nth(1).expect("host").to_owned();
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(key) = &self.key {
            let date = http_date(self.date.unwrap_or_else(|| self.server.clock.now()));
            let hash = content_hash(&self.body);
            let sts = string_to_sign(
                self.method.as_str(),
                self.sign_path.as_deref().unwrap_or(&self.path_and_query),
                &date,
                self.sign_host.as_deref().unwrap_or(&host),
                &hash,
            );
            let key = AccessKey::new(KeyName::Primary, &STANDARD.decode(key).expect("base64 key"));
            headers.push(("x-ms-date".to_owned(), date));
            headers.push(("x-ms-content-sha256".to_owned(), hash));
            headers.push(("authorization".to_owned(), authorization_header(&key.sign(&sts))));
        }
        if !self.body.is_empty() {
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
        }
        headers.retain(|(n, _)| {
            !self.drop_headers.contains(n)
                && !self.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n))
        });
        headers.extend(self.headers.iter().cloned());
        let client = if self.plain_http { &self.server.http } else { &self.server.https };
        let mut req = client.request(self.method.clone(), url).body(self.body.clone());
        for (n, v) in headers {
            req = req.header(n, v);
        }
        let res = req.send().await.ok()?;
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.ok()?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Some(TestResponse { status, headers, text, json })
    }
}

/// A received response.
#[derive(Debug)]
pub struct TestResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body text.
    pub text: String,
    /// Body as JSON (`Null` when not JSON).
    pub json: Value,
}

impl TestResponse {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an ACS error envelope with this status and code; returns the message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.json["error"]["code"], code, "body: {}", self.text);
        assert!(self.header("content-type").is_some_and(|c| c.starts_with("application/json")));
        self.json["error"]["message"].as_str().expect("message").to_owned()
    }
}

/// Decodes a JWT's payload.
pub fn jwt_payload(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

/// Decodes a JWT's header.
pub fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}
