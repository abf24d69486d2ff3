//! Replays the official SDKs' recorded sessions with ACS (`tests/recordings/`) against a
//! fresh service and compares the answers: each request is rebuilt with live ids and tokens,
//! signed the way its SDK signs (host form, date header, path form) and sent with the SDK's
//! own recorded headers. A difference fails the test unless `allowed.json` explains it.

mod compare;
mod fixtures;

use acs_identity_core::clock::{Clock as _, SystemClock};
use std::collections::{BTreeMap, HashSet};

use acs_identity_core::hmac::{
    authorization_header, content_hash, percent_decode, string_to_sign, AccessKey, KeyName,
};
use acs_identity_core::time_format::http_date;
use acs_identity_testkit::issuer::{API_AUDIENCE, TEAMS_AUDIENCE, TEAMS_USER_SCOPES};
use acs_identity_testkit::{uuid_like, TestIssuer, TestServer};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use time::Duration;

use compare::{differences, Answer};
use fixtures::{Entry, Fixture, Sdk};

/// Request headers the replay computes itself instead of sending the recorded value.
const COMPUTED: &[&str] = &[
    "authorization",
    "content-length",
    "date",
    "host",
    "x-ms-client-request-id",
    "x-ms-content-sha256",
    "x-ms-date",
];

/// The running service, the issuer it trusts, and a client that trusts its CA.
struct Replay {
    server: TestServer,
    issuer: TestIssuer,
    client: reqwest::Client,
    key: Vec<u8>,
    /// `127.0.0.1:<port>`.
    authority: String,
    port: u16,
}

/// Live values standing in for what the recording sanitized, per fixture.
struct Live {
    teams_object_id: String,
    teams_app_id: String,
    teams_token: String,
    teams_token_expired: String,
    /// The identity the fixture's last create made.
    last_id: Option<String>,
}

impl Replay {
    async fn start() -> Replay {
        let (server, issuer) = TestServer::start_with_trusted_issuer().await;
        let ca = std::fs::read(server.ca_path()).expect("CA");
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA pem"))
            .build()
            .expect("client");
        let key = STANDARD.decode(server.key(KeyName::Primary)).expect("key");
        let authority = server.endpoint().trim_start_matches("https://").to_owned();
        let port = authority.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        Replay { server, issuer, client, key, authority, port }
    }

    fn live(&self) -> Live {
        let (oid, app) = (uuid_like(), uuid_like());
        let token = self.issuer.teams_token(&oid, &app, TEAMS_USER_SCOPES);
        let mut expired = self.issuer.claims(TEAMS_AUDIENCE, &oid, &app, TEAMS_USER_SCOPES);
        let past = SystemClock.now() - Duration::hours(2);
        expired["iat"] = past.unix_timestamp().into();
        expired["nbf"] = past.unix_timestamp().into();
        expired["exp"] = (past + Duration::hours(1)).unix_timestamp().into();
        Live {
            teams_object_id: oid,
            teams_app_id: app,
            teams_token: token,
            teams_token_expired: self.issuer.mint(&expired),
            last_id: None,
        }
    }

    /// A new identity for a fixture whose recording used one it made earlier.
    async fn fresh_identity(&self) -> String {
        self.server.create_user().await
    }

    /// Sends `entry`'s request the way `sdk` (`client` kind) sends it; returns the answer,
    /// the client request id sent, and the request's api-version.
    async fn send(
        &self,
        sdk: Sdk,
        fixture: &Fixture,
        entry: &Entry,
        live: &mut Live,
    ) -> (Answer, Option<String>) {
        let req = &entry.request;
        let mut path = req.path.clone();
        if path.contains("${id}") {
            let id = match (&fixture.foreign_id, &live.last_id) {
                (Some(foreign), _) => foreign.clone(),
                (None, Some(id)) => id.clone(),
                (None, None) => {
                    let id = self.fresh_identity().await;
                    live.last_id = Some(id.clone());
                    id
                }
            };
            // Java's path escaper keeps `:`; the others send `%3A`.
            let segment = if sdk == Sdk::Java { id } else { id.replace(':', "%3A") };
            path = path.replace("${id}", &segment);
        }
        let body = req.body.as_ref().map(|b| {
            b.replace("${teams.token.expired}", &live.teams_token_expired)
                .replace("${teams.token}", &live.teams_token)
                .replace("${teams.app_id}", &live.teams_app_id)
                .replace("${teams.object_id}", &live.teams_object_id)
        });
        let bytes = body.clone().unwrap_or_default().into_bytes();

        let method = reqwest::Method::from_bytes(req.method.as_bytes()).expect("method");
        let url = format!("https://{}{path}", self.authority);
        let mut out = self.client.request(method, url);
        let recorded = |name: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str())
        };
        for (name, value) in &req.headers {
            if COMPUTED.contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            out = out.header(name.as_str(), value.as_str().expect("header text"));
        }
        // The SDK's request id: its own when the recording kept it, else one of its form.
        let request_id = recorded("x-ms-client-request-id").map(|v| match v {
            "sanitized" | "Sanitized" => match sdk {
                Sdk::Dotnet => uuid_like().replace('-', ""),
                _ => uuid_like(),
            },
            own => own.to_owned(),
        });
        if let Some(id) = &request_id {
            out = out.header("x-ms-client-request-id", id);
        }
        if fixture.auth == "entra" {
            let caller = self.issuer.claims(API_AUDIENCE, &uuid_like(), &uuid_like(), "");
            out = out.header("authorization", format!("Bearer {}", self.issuer.mint(&caller)));
        } else {
            for (name, value) in
                self.sign(sdk, fixture, &req.method, &path, &bytes, recorded("date"))
            {
                out = out.header(name, value);
            }
        }
        let res = out.body(bytes).send().await.expect("request sent");
        let answer = Answer {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            text: res.text().await.expect("body"),
        };
        (answer, request_id)
    }

    /// The HMAC headers `sdk` computes (WIRE.md §7): its host form, its date header (`Date`
    /// in .NET's and Python's 2020–2021 releases, `x-ms-date` since), its path form (Python's
    /// async client signs the percent-decoded path).
    fn sign(
        &self,
        sdk: Sdk,
        fixture: &Fixture,
        method: &str,
        path: &str,
        body: &[u8],
        recorded_date: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let (sign_host, host_header) = match sdk {
            Sdk::Dotnet | Sdk::Python => (self.authority.clone(), None),
            // `URL.getHost()`: no port, and the Host header set to the same.
            Sdk::Java => ("127.0.0.1".to_owned(), Some("127.0.0.1".to_owned())),
            // `url.host + ":" + url.port`; Node sets Host to it, a browser keeps its own.
            Sdk::Js => {
                let host = format!("{}:{}", self.authority, self.port);
                let browser = fixture.client.as_deref() == Some("browser");
                (host.clone(), (!browser).then_some(host))
            }
        };
        let signed_path = if fixture.client.as_deref() == Some("async") {
            percent_decode(path).unwrap_or_else(|| path.to_owned())
        } else {
            path.to_owned()
        };
        let date = http_date(SystemClock.now());
        let hash = content_hash(body);
        let sts = string_to_sign(method, &signed_path, &date, &sign_host, &hash);
        let signature = AccessKey::new(KeyName::Primary, &self.key).sign(&sts);
        let mut headers = Vec::new();
        if recorded_date.is_some() {
            headers.push(("date", date));
            headers.push((
                "authorization",
                format!(
                    "HMAC-SHA256 SignedHeaders=date;host;x-ms-content-sha256&Signature={signature}"
                ),
            ));
        } else {
            headers.push(("x-ms-date", date));
            headers.push(("authorization", authorization_header(&signature)));
        }
        headers.push(("x-ms-content-sha256", hash));
        if let Some(host) = host_header {
            headers.push(("host", host));
        }
        if sdk == Sdk::Java {
            // Java sends a copy of the string to sign for debugging (no key in it).
            headers.push(("x-ms-hmac-string-to-sign-base64", STANDARD.encode(&sts)));
        }
        headers
    }
}

fn api_version(path: &str) -> Option<&str> {
    path.split_once("api-version=").map(|(_, v)| v.split('&').next().unwrap_or(v))
}

fn expires_in_minutes(body: Option<&str>) -> Option<i64> {
    let v: Value = serde_json::from_str(body?).ok()?;
    v.get("expiresInMinutes")?.as_i64()
}

#[derive(Default)]
struct Tally {
    matched: usize,
    allowed: usize,
    failed: usize,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Matched => self.matched += 1,
            Outcome::Allowed => self.allowed += 1,
            Outcome::Failed => self.failed += 1,
        }
    }

    fn total(&self) -> usize {
        self.matched + self.allowed + self.failed
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}/{}/{})", self.total(), self.matched, self.allowed, self.failed)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Matched,
    Allowed,
    Failed,
}

#[tokio::test]
async fn recorded_acs_sessions_replay() {
    let replay = Replay::start().await;
    let allowed = fixtures::allowed();
    let mut seen: HashSet<(String, usize)> = HashSet::new();
    let mut per_sdk: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut per_operation: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = Vec::new();

    for sdk in Sdk::ALL {
        for fixture in fixtures::load(sdk) {
            let id = format!("{}/{}", sdk.name(), fixture.name);
            let mut live = replay.live();
            let mut worst = Outcome::Matched;
            for (i, entry) in fixture.entries.iter().enumerate() {
                let (answer, request_id) = replay.send(sdk, &fixture, entry, &mut live).await;
                if answer.status == 201 && entry.operation == "create" {
                    let v: Value = serde_json::from_str(&answer.text).unwrap_or(Value::Null);
                    live.last_id = v["identity"]["id"].as_str().map(str::to_owned);
                }
                let diffs = differences(
                    entry.response.status,
                    &entry.response.headers,
                    &entry.response.body,
                    &answer,
                    api_version(&entry.request.path),
                    request_id.as_deref(),
                    expires_in_minutes(entry.request.body.as_deref()),
                );
                seen.insert((id.clone(), i));
                let listed = allowed.iter().any(|a| a.fixture == id && a.entry == i);
                let outcome = match (diffs.is_empty(), listed) {
                    (true, false) => Outcome::Matched,
                    (true, true) => {
                        failures.push(format!(
                            "{id}#{i}: matches ACS now; remove it from allowed.json"
                        ));
                        Outcome::Failed
                    }
                    (false, true) => Outcome::Allowed,
                    (false, false) => {
                        failures.push(format!(
                            "{id}#{i} {} {}: {}\n    source: {}@{}",
                            entry.request.method,
                            entry.request.path,
                            diffs.join("; "),
                            fixture.source.path,
                            &fixture.source.commit[..12],
                        ));
                        Outcome::Failed
                    }
                };
                per_operation.entry(entry.operation.clone()).or_default().add(outcome);
                worst = worst.max(outcome);
            }
            per_sdk.entry(sdk.name()).or_default().add(worst);
        }
    }
    for a in allowed.iter().filter(|a| !seen.contains(&(a.fixture.clone(), a.entry))) {
        failures
            .push(format!("allowed.json names {}#{}, which no fixture has", a.fixture, a.entry));
    }

    let sdks: Vec<String> = per_sdk.iter().map(|(k, t)| format!("{k} {t}")).collect();
    let ops: Vec<String> = per_operation.iter().map(|(k, t)| format!("{k} {t}")).collect();
    println!(
        "replay: fixtures (matched/allowed/failed) per SDK: {}; requests per operation: {}",
        sdks.join(", "),
        ops.join(", ")
    );
    assert!(
        failures.is_empty(),
        "{} difference(s) from ACS's recorded answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every SDK's recordings are present.
    assert_eq!(per_sdk.len(), 4, "{sdks:?}");
}
