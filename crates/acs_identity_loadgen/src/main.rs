//! `acs-identity-loadgen`: a closed-loop load generator for acs-identity.
//!
//! Each of `--connections` workers keeps one HTTP/1.1 keep-alive connection (plain or
//! TLS) and sends one signed request at a time, timing it from the first byte written to
//! the last byte read. Requests are signed per request with the access key, as the official
//! SDKs sign them. After `--warmup` seconds, responses are counted and timed for
//! `--duration` seconds. Every response status is checked: non-2xx responses, transport
//! errors and unexpected bodies are counted, reported and make the exit status 1.

mod hist;
mod http;

use acs_identity_core::clock::{Clock as _, SystemClock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acs_identity_core::hmac::{AccessKey, KeyName};
use anyhow::{bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::{Parser, ValueEnum};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::hist::Histogram;
use crate::http::Signer;

/// What each request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// `POST /identities/{id}/:issueAccessToken` with `{"scopes":["chat"]}` for a random user.
    IssueToken,
    /// `POST /identities` with an empty body.
    CreateUser,
    /// `POST /identities` with `createTokenWithScopes` `["chat","voip"]`.
    CreateUserAndToken,
    /// `POST /identities/{id}/:revokeAccessTokens` for a random user.
    Revoke,
    /// `POST /accessTokens/:validate` with a random user's token; the answer must be valid.
    Validate,
    /// Not this service: `POST /token` with the OAuth 2.0 client-credentials grant and HTTP
    /// Basic client authentication (`--oidc-client`), to load an OpenID provider (the
    /// benchmark's peer, node-oidc-provider) the same way.
    OidcClientCredentials,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::IssueToken => "issue-token",
            Scenario::CreateUser => "create-user",
            Scenario::CreateUserAndToken => "create-user-and-token",
            Scenario::Revoke => "revoke",
            Scenario::Validate => "validate",
            Scenario::OidcClientCredentials => "oidc-client-credentials",
        }
    }

    fn needs_users(self) -> bool {
        matches!(self, Scenario::IssueToken | Scenario::Revoke | Scenario::Validate)
    }
}

/// Load an acs-identity service with signed ACS Identity requests and report throughput
/// and latency percentiles. `Debug` leaves out the connection string (it holds the key).
#[derive(Parser)]
#[command(name = "acs-identity-loadgen", version)]
struct Args {
    /// Where to send requests: `http://HOST:PORT` (plain HTTP/1.1) or `https://HOST:PORT`
    /// [default: the connection string's endpoint].
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// The resource's connection string (`endpoint=…;accesskey=…`); only its key is used
    /// when --endpoint is given.
    #[arg(
        long,
        env = "ACSID_LOADGEN_CONNECTION_STRING",
        value_name = "STRING",
        hide_env_values = true
    )]
    connection_string: String,
    /// What to measure.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Concurrent keep-alive connections, one request in flight on each.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Users to load (issue-token, revoke, validate): one raw id (`8:acs:…`) per line.
    /// Without it, --pool users are created through the API first.
    #[arg(long, value_name = "FILE")]
    users_file: Option<PathBuf>,
    /// Users created first (or, for validate with --users-file, users given a token first).
    #[arg(long, default_value_t = 1000)]
    pool: usize,
    /// CA certificate (PEM) to trust for an https endpoint, e.g. `<data-dir>/tls/ca.pem`.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// api-version sent with every ACS route.
    #[arg(long, default_value = "2023-10-01")]
    api_version: String,
    /// Runtime threads of the load generator (1 runs every connection on one thread).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Also report this process's CPU use during the measured window (the server's pid).
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Seconds after which one request counts as failed.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// `CLIENT_ID:SECRET` for the oidc-client-credentials scenario.
    #[arg(long, value_name = "ID:SECRET")]
    oidc_client: Option<String>,
    /// `scope` requested by the oidc-client-credentials scenario.
    #[arg(long, default_value = "api")]
    oidc_scope: String,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("endpoint", &self.endpoint)
            .field("scenario", &self.scenario)
            .finish_non_exhaustive()
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("acs-identity-loadgen: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            if report.failed() {
                eprintln!(
                    "acs-identity-loadgen: FAILED: {} non-2xx responses, {} transport errors, \
                     {} unexpected bodies, {} successful responses",
                    report.non_2xx(),
                    report.tally.errors,
                    report.tally.unexpected,
                    report.tally.hist.count()
                );
                for e in &report.tally.error_samples {
                    eprintln!("  {e}");
                }
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("acs-identity-loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Where to connect and what to put in `Host`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    tls: bool,
    /// `host[:port]` as written: the `Host` header and the signed host.
    authority: String,
    /// The host alone (no brackets), for TLS server names.
    host: String,
    port: u16,
}

impl Endpoint {
    fn parse(url: &str) -> anyhow::Result<Endpoint> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            bail!("endpoint {url:?} must start with http:// or https://");
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains('/') {
            bail!("endpoint {url:?} must be scheme://host[:port] without a path");
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').context("unclosed '[' in endpoint")?;
            match after.strip_prefix(':') {
                Some(p) => (h, p.parse().context("bad port")?),
                None if after.is_empty() => (h, default_port),
                None => bail!("bad endpoint {url:?}"),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().context("bad port")?),
                None => (authority, default_port),
            }
        };
        Ok(Endpoint { tls, authority: authority.to_owned(), host: host.to_owned(), port })
    }
}

/// The endpoint and access key of a connection string.
fn parse_connection_string(s: &str) -> anyhow::Result<(String, AccessKey)> {
    let mut endpoint = None;
    let mut key = None;
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').context("connection string part without '='")?;
        if k.trim().eq_ignore_ascii_case("endpoint") {
            endpoint = Some(v.trim().to_owned());
        } else if k.trim().eq_ignore_ascii_case("accesskey") {
            key = Some(v.trim().to_owned());
        }
    }
    let endpoint = endpoint.context("connection string has no endpoint")?;
    let key = key.context("connection string has no accesskey")?;
    let raw = STANDARD.decode(&key).context("the access key is not base64")?;
    Ok((endpoint, AccessKey::new(KeyName::Primary, &raw)))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Connector {
    endpoint: Endpoint,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Connector {
    fn new(endpoint: Endpoint, ca_file: Option<&Path>) -> anyhow::Result<Connector> {
        let tls = if endpoint.tls {
            let ca = ca_file
                .context("an https endpoint needs --ca-file (e.g. <data-dir>/tls/ca.pem)")?;
            let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                roots.add(cert.context("bad certificate in --ca-file")?)?;
            }
            if roots.is_empty() {
                bail!("no certificate in {}", ca.display());
            }
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        Ok(Connector { endpoint, tls })
    }

    async fn connect(&self) -> anyhow::Result<Box<dyn Io>> {
        let addr = (self.endpoint.host.as_str(), self.endpoint.port);
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {}", self.endpoint.authority))?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(self.endpoint.host.clone())
                    .context("bad TLS server name")?;
                let stream = tls.connect(name, tcp).await.context("TLS handshake")?;
                Ok(Box::new(stream))
            }
        }
    }
}

/// A user to load, and a token of theirs for validate.
#[derive(Clone, Debug)]
struct User {
    /// The raw id, percent-encoded for a path segment.
    path: String,
    token: Option<String>,
}

fn encode_id(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 8);
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// xorshift64*: cheap, and good enough to pick users.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(stream: u64) -> Rng {
        // The low 64 bits of the time in nanoseconds: a different seed per run.
        let t = SystemClock.now().unix_timestamp_nanos() as u64;
        Rng((t ^ stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

const CREATE_AND_TOKEN_BODY: &[u8] =
    br#"{"createTokenWithScopes":["chat","voip"],"expiresInMinutes":60}"#;
const ISSUE_BODY: &[u8] = br#"{"scopes":["chat"]}"#;

/// Everything the workers share.
struct Plan {
    scenario: Scenario,
    /// The head and body of every oidc-client-credentials request (it never changes).
    oidc_request: Option<Vec<u8>>,
    api_version: String,
    users: Vec<User>,
    key: AccessKey,
    connector: Connector,
    measure_start: Instant,
    end: Instant,
    timeout: Duration,
}

impl Plan {
    /// Writes the next request into `out`.
    fn next_request(
        &self,
        signer: &mut Signer,
        rng: &mut Rng,
        path: &mut String,
        body: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) {
        use std::fmt::Write as _;
        if let Some(request) = &self.oidc_request {
            out.clear();
            out.extend_from_slice(request);
            return;
        }
        path.clear();
        body.clear();
        let v = &self.api_version;
        let user = if self.users.is_empty() {
            None
        } else {
            Some(&self.users[rng.below(self.users.len())])
        };
        match (self.scenario, user) {
            (Scenario::IssueToken, Some(u)) => {
                let _ = write!(path, "/identities/{}/:issueAccessToken?api-version={v}", u.path);
                body.extend_from_slice(ISSUE_BODY);
            }
            (Scenario::Revoke, Some(u)) => {
                let _ = write!(path, "/identities/{}/:revokeAccessTokens?api-version={v}", u.path);
            }
            (Scenario::Validate, Some(u)) => {
                path.push_str("/accessTokens/:validate");
                let token = u.token.as_deref().unwrap_or_default();
                body.extend_from_slice(json!({ "token": token }).to_string().as_bytes());
            }
            (Scenario::CreateUserAndToken, _) => {
                let _ = write!(path, "/identities?api-version={v}");
                body.extend_from_slice(CREATE_AND_TOKEN_BODY);
            }
            // create-user (and, unreachable, a user scenario without users).
            _ => {
                let _ = write!(path, "/identities?api-version={v}");
            }
        }
        signer.build(out, "POST", path, body);
    }

    /// Whether a 2xx body is what the scenario expects.
    fn body_ok(&self, body: &[u8]) -> bool {
        match self.scenario {
            Scenario::Validate => contains(body, br#""valid":true"#),
            Scenario::IssueToken => contains(body, br#""token":""#),
            Scenario::CreateUserAndToken => contains(body, br#""accessToken":"#),
            Scenario::CreateUser => contains(body, br#""identity":"#),
            Scenario::Revoke => true,
            Scenario::OidcClientCredentials => contains(body, br#""access_token":""#),
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What one worker (or all of them, merged) saw.
#[derive(Debug, Default)]
struct Tally {
    /// Latencies of 2xx responses sent after the warm-up and received before the end.
    hist: Histogram,
    /// Every response's status, warm-up included.
    statuses: BTreeMap<u16, u64>,
    /// Transport errors and timeouts.
    errors: u64,
    /// 2xx responses whose body was not what the scenario expects.
    unexpected: u64,
    error_samples: Vec<String>,
}

impl Tally {
    fn note(&mut self, what: String) {
        if self.error_samples.len() < 5 {
            self.error_samples.push(what);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.hist.merge(&other.hist);
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.errors += other.errors;
        self.unexpected += other.unexpected;
        for e in other.error_samples {
            self.note(e);
        }
    }
}

async fn worker(id: usize, plan: Arc<Plan>) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng::new(id as u64);
    let mut signer = Signer::new(plan.key.clone(), plan.connector.endpoint.authority.clone());
    let mut conn: Option<Box<dyn Io>> = None;
    let (mut rbuf, mut out) = (Vec::with_capacity(16 * 1024), Vec::with_capacity(4096));
    let (mut path, mut body) = (String::new(), Vec::new());
    while Instant::now() < plan.end {
        if conn.is_none() {
            match plan.connector.connect().await {
                Ok(io) => {
                    rbuf.clear();
                    conn = Some(io);
                }
                Err(e) => {
                    tally.errors += 1;
                    tally.note(format!("{e:#}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let Some(io) = conn.as_mut() else { continue };
        plan.next_request(&mut signer, &mut rng, &mut path, &mut body, &mut out);
        let t0 = Instant::now();
        let result = tokio::time::timeout(plan.timeout, http::exchange(io, &out, &mut rbuf)).await;
        let t1 = Instant::now();
        match result {
            Err(_) => {
                tally.errors += 1;
                tally.note(format!("no response within {:?}", plan.timeout));
                conn = None;
            }
            Ok(Err(e)) => {
                tally.errors += 1;
                tally.note(format!("{e:#}"));
                conn = None;
            }
            Ok(Ok(resp)) => {
                *tally.statuses.entry(resp.status).or_default() += 1;
                if (200..300).contains(&resp.status) {
                    if !plan.body_ok(&resp.body) {
                        tally.unexpected += 1;
                        tally.note(format!(
                            "unexpected {} body: {}",
                            resp.status,
                            String::from_utf8_lossy(&resp.body[..resp.body.len().min(300)])
                        ));
                    } else if t0 >= plan.measure_start && t1 <= plan.end {
                        tally.hist.record(u64::try_from((t1 - t0).as_nanos()).unwrap_or(u64::MAX));
                    }
                } else {
                    tally.note(format!(
                        "HTTP {} on {}: {}",
                        resp.status,
                        path.split('?').next().unwrap_or_default(),
                        String::from_utf8_lossy(&resp.body[..resp.body.len().min(300)])
                    ));
                }
                if resp.close {
                    conn = None;
                }
            }
        }
    }
    tally
}

/// Sends one setup request (building the user pool) and parses its JSON answer.
async fn setup_request(
    io: &mut Box<dyn Io>,
    signer: &mut Signer,
    rbuf: &mut Vec<u8>,
    path: &str,
    body: &[u8],
) -> anyhow::Result<serde_json::Value> {
    let mut out = Vec::new();
    signer.build(&mut out, "POST", path, body);
    let resp = http::exchange(io, &out, rbuf).await?;
    if !(200..300).contains(&resp.status) {
        bail!(
            "setup request POST {path} answered {}: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
    }
    serde_json::from_slice(&resp.body).context("setup response is not JSON")
}

/// Creates `n` users with tokens (or, given users, issues each a token), over `conns`
/// connections.
async fn setup_users(
    connector: &Arc<Connector>,
    key: &AccessKey,
    api_version: &str,
    given: Option<Vec<User>>,
    n: usize,
    conns: usize,
) -> anyhow::Result<Vec<User>> {
    let conns = conns.clamp(1, n.max(1));
    let given = given.map(Arc::new);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let connector = Arc::clone(connector);
        let key = key.clone();
        let v = api_version.to_owned();
        let given = given.clone();
        tasks.push(tokio::spawn(async move {
            let mut io = connector.connect().await?;
            let mut signer = Signer::new(key, connector.endpoint.authority.clone());
            let mut rbuf = Vec::new();
            let mut users = Vec::new();
            for i in (c..n).step_by(conns) {
                if let Some(given) = &given {
                    let user = &given[i];
                    let path =
                        format!("/identities/{}/:issueAccessToken?api-version={v}", user.path);
                    let value =
                        setup_request(&mut io, &mut signer, &mut rbuf, &path, ISSUE_BODY).await?;
                    let token =
                        value["token"].as_str().context("no token in the issue response")?;
                    users.push(User { path: user.path.clone(), token: Some(token.to_owned()) });
                } else {
                    let path = format!("/identities?api-version={v}");
                    let value = setup_request(
                        &mut io,
                        &mut signer,
                        &mut rbuf,
                        &path,
                        CREATE_AND_TOKEN_BODY,
                    )
                    .await?;
                    let id = value["identity"]["id"]
                        .as_str()
                        .context("no identity.id in the create response")?;
                    let token =
                        value["accessToken"]["token"].as_str().context("no accessToken.token")?;
                    users.push(User { path: encode_id(id), token: Some(token.to_owned()) });
                }
            }
            anyhow::Ok(users)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.context("setup task panicked")??);
    }
    Ok(all)
}

fn read_users_file(path: &Path) -> anyhow::Result<Vec<User>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let users: Vec<User> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|raw| User { path: encode_id(raw), token: None })
        .collect();
    if users.is_empty() {
        bail!("{} lists no users", path.display());
    }
    Ok(users)
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux.
}

/// CPU seconds all CPUs have been busy (not idle, not waiting for IO), from `/proc/stat`.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<f64> = line.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy = v
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, x)| x)
        .sum::<f64>();
    Some(busy / 100.0)
}

struct Report {
    scenario: Scenario,
    endpoint: String,
    connections: usize,
    warmup: f64,
    duration: f64,
    users: usize,
    tally: Tally,
    server_cores: Option<f64>,
    loadgen_cores: Option<f64>,
    /// Busy CPU of the whole machine, less the server and this process.
    other_cores: Option<f64>,
}

impl Report {
    fn non_2xx(&self) -> u64 {
        self.tally.statuses.iter().filter(|(s, _)| !(200..300).contains(*s)).map(|(_, n)| n).sum()
    }

    fn failed(&self) -> bool {
        self.non_2xx() > 0
            || self.tally.errors > 0
            || self.tally.unexpected > 0
            || self.tally.hist.count() == 0
    }

    fn rps(&self) -> f64 {
        self.tally.hist.count() as f64 / self.duration
    }

    fn ms(&self, q: f64) -> f64 {
        self.tally.hist.quantile(q) as f64 / 1e6
    }

    fn to_json(&self) -> serde_json::Value {
        let h = &self.tally.hist;
        json!({
            "scenario": self.scenario.name(),
            "endpoint": self.endpoint,
            "connections": self.connections,
            "warmup_s": self.warmup,
            "duration_s": self.duration,
            "users": self.users,
            "requests": h.count(),
            "rps": self.rps(),
            "latency_ms": {
                "min": h.min() as f64 / 1e6,
                "mean": h.mean() / 1e6,
                "p50": self.ms(0.5),
                "p90": self.ms(0.9),
                "p99": self.ms(0.99),
                "p99_9": self.ms(0.999),
                "max": h.max() as f64 / 1e6,
            },
            "statuses": self.tally.statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "non_2xx": self.non_2xx(),
            "errors": self.tally.errors,
            "unexpected_bodies": self.tally.unexpected,
            "error_samples": self.tally.error_samples,
            "server_cpu_cores": self.server_cores,
            "loadgen_cpu_cores": self.loadgen_cores,
            "other_cpu_cores": self.other_cores,
            "ok": !self.failed(),
        })
    }

    fn to_text(&self) -> String {
        let h = &self.tally.hist;
        let statuses: Vec<String> =
            self.tally.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        let cores = |c: Option<f64>| c.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.2}"));
        format!(
            "{scenario} against {endpoint}: {conns} connections, {users} users, {d} s measured after {w} s warm-up\n\
             \x20 throughput  {rps:.0} requests/s ({n} responses)\n\
             \x20 latency     p50 {p50:.3} ms  p90 {p90:.3} ms  p99 {p99:.3} ms  p99.9 {p999:.3} ms  max {max:.3} ms  (mean {mean:.3} ms)\n\
             \x20 statuses    {statuses}\n\
             \x20 non-2xx     {non2xx}   transport errors {errors}   unexpected bodies {unexpected}\n\
             \x20 CPU cores   server {server}   load generator {loadgen}   everything else {other}\n",
            scenario = self.scenario.name(),
            endpoint = self.endpoint,
            conns = self.connections,
            users = self.users,
            d = self.duration,
            w = self.warmup,
            rps = self.rps(),
            n = h.count(),
            p50 = self.ms(0.5),
            p90 = self.ms(0.9),
            p99 = self.ms(0.99),
            p999 = self.ms(0.999),
            max = h.max() as f64 / 1e6,
            mean = h.mean() / 1e6,
            statuses = statuses.join(" "),
            non2xx = self.non_2xx(),
            errors = self.tally.errors,
            unexpected = self.tally.unexpected,
            server = cores(self.server_cores),
            loadgen = cores(self.loadgen_cores),
            other = cores(self.other_cores),
        )
    }
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.connections == 0 || args.duration <= 0.0 || args.warmup < 0.0 {
        bail!("--connections and --duration must be positive and --warmup not negative");
    }
    let (cs_endpoint, key) = parse_connection_string(&args.connection_string)?;
    let endpoint = Endpoint::parse(args.endpoint.as_deref().unwrap_or(&cs_endpoint))?;
    let url = format!("{}://{}", if endpoint.tls { "https" } else { "http" }, endpoint.authority);
    let connector = Arc::new(Connector::new(endpoint, args.ca_file.as_deref())?);

    let mut users = Vec::new();
    if args.scenario.needs_users() {
        let given = args.users_file.as_deref().map(read_users_file).transpose()?;
        users = match given {
            Some(given) if args.scenario == Scenario::Validate => {
                let n = args.pool.min(given.len());
                eprintln!("acs-identity-loadgen: issuing tokens to {n} users of the users file");
                setup_users(&connector, &key, &args.api_version, Some(given), n, args.connections)
                    .await?
            }
            Some(given) => given,
            None => {
                eprintln!("acs-identity-loadgen: creating {} users with tokens", args.pool);
                setup_users(&connector, &key, &args.api_version, None, args.pool, args.connections)
                    .await?
            }
        };
        if users.is_empty() {
            bail!("no users to load (--pool 0?)");
        }
    }
    let connector =
        Arc::try_unwrap(connector).map_err(|_| anyhow::anyhow!("setup still running"))?;

    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(args.warmup);
    let end = measure_start + Duration::from_secs_f64(args.duration);
    let oidc_request = match (args.scenario, &args.oidc_client) {
        (Scenario::OidcClientCredentials, Some(client)) => {
            use base64::Engine as _;
            let basic = base64::engine::general_purpose::STANDARD.encode(client);
            let body = format!("grant_type=client_credentials&scope={}", args.oidc_scope);
            let head = format!(
                "POST /token HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {basic}\r\n\
                 Accept: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                connector.endpoint.authority,
                body.len()
            );
            Some(head.into_bytes())
        }
        (Scenario::OidcClientCredentials, None) => {
            bail!("oidc-client-credentials needs --oidc-client")
        }
        _ => None,
    };
    let plan = Arc::new(Plan {
        oidc_request,
        scenario: args.scenario,
        api_version: args.api_version.clone(),
        users,
        key,
        connector,
        measure_start,
        end,
        timeout: Duration::from_secs_f64(args.timeout),
    });
    eprintln!(
        "acs-identity-loadgen: {} on {url}, {} connections, {} s warm-up + {} s",
        args.scenario.name(),
        args.connections,
        args.warmup,
        args.duration
    );

    let server_pid = args.server_pid.map(|p| p.to_string());
    let sampler = tokio::spawn(async move {
        let sample = |pid: &Option<String>| {
            (pid.as_deref().and_then(cpu_seconds), cpu_seconds("self"), machine_busy_seconds())
        };
        tokio::time::sleep_until(measure_start.into()).await;
        let (a, t0) = (sample(&server_pid), Instant::now());
        tokio::time::sleep_until(end.into()).await;
        let (b, t1) = (sample(&server_pid), Instant::now());
        let secs = (t1 - t0).as_secs_f64();
        let per = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / secs);
        let (server, loadgen, all) = (per(a.0, b.0), per(a.1, b.1), per(a.2, b.2));
        let other = (|| Some((all? - server? - loadgen?).max(0.0)))();
        (server, loadgen, other)
    });
    let tasks: Vec<_> =
        (0..args.connections).map(|i| tokio::spawn(worker(i, Arc::clone(&plan)))).collect();
    let mut tally = Tally::default();
    for t in tasks {
        tally.merge(t.await.context("worker panicked")?);
    }
    let (server_cores, loadgen_cores, other_cores) = sampler.await.context("sampler panicked")?;
    Ok(Report {
        scenario: args.scenario,
        endpoint: url,
        connections: args.connections,
        warmup: args.warmup,
        duration: args.duration,
        users: plan.users.len(),
        tally,
        server_cores,
        loadgen_cores,
        other_cores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            (e.tls, e.authority.as_str(), e.host.as_str(), e.port),
            (false, "127.0.0.1:8080", "127.0.0.1", 8080)
        );
        let e = Endpoint::parse("https://[::1]:8443").unwrap();
        assert_eq!(
            (e.tls, e.authority.as_str(), e.host.as_str(), e.port),
            (true, "[::1]:8443", "::1", 8443)
        );
        let e = Endpoint::parse("https://localhost").unwrap();
        assert_eq!((e.authority.as_str(), e.port), ("localhost", 443));
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("http://x:1/path").is_err());
        assert!(Endpoint::parse("http://x:port").is_err());
    }

    #[test]
    fn connection_strings_parse() {
        let (endpoint, key) =
            parse_connection_string("endpoint=https://127.0.0.1:8443/;accesskey=AAECAw==").unwrap();
        assert_eq!(endpoint, "https://127.0.0.1:8443/");
        assert_eq!(key.sign("x"), AccessKey::new(KeyName::Primary, &[0, 1, 2, 3]).sign("x"));
        assert!(parse_connection_string("endpoint=https://x/").is_err());
        assert!(parse_connection_string("endpoint=https://x/;accesskey=***").is_err());
    }

    #[test]
    fn ids_are_percent_encoded() {
        assert_eq!(encode_id("8:acs:a-b_c"), "8%3Aacs%3Aa-b_c");
    }

    #[test]
    fn cpu_of_self_is_readable() {
        assert!(cpu_seconds("self").is_some_and(|s| s >= 0.0));
        assert!(cpu_seconds("0").is_none());
        assert!(machine_busy_seconds().is_some_and(|s| s > 0.0));
    }
}
