//! An HTTP/1.1 transport for the `azure_core` pipeline, on hyper's connection API.
//!
//! [`Http1Transport`] is what Communication Services clients send with unless their
//! [`ClientOptions::transport`](azure_core::http::ClientOptions::transport) says otherwise
//! (see [`default_transport`]). It does what a client of one service endpoint needs and no more:
//! keep-alive connections pooled per scheme, host and port, `http` and `https` (rustls with the
//! platform's certificate verifier, plus any extra roots), a connect timeout and a response
//! timeout. Compared with `azure_core`'s default `reqwest` transport it skips the URL
//! re-parsing, header-map copies, redirect and decompression layers and connection-pool
//! machinery a general-purpose client runs for every request; for the small JSON requests of the
//! Communication Services APIs that halves the client's CPU per call (BENCHMARKS.md, "Client CPU
//! per call").
//!
//! It does not speak HTTP/2 and does not use proxies: when an `HTTPS_PROXY`, `HTTP_PROXY` or
//! `ALL_PROXY` variable is set, [`default_transport`] returns `azure_core`'s default transport,
//! which does.
//!
//! # Retries
//!
//! A request that could not be written because a pooled connection had closed is sent again on
//! another connection at once; nothing of it reached the server. Any later failure is returned as
//! an [`ErrorKind::Io`] error (or [`ErrorKind::Connection`] when no connection could be made), which
//! the pipeline's retry policy retries.

use azure_core::{
    error::{Error, ErrorKind, ResultExt},
    http::{
        headers::{HeaderName, HeaderValue, Headers},
        AsyncRawResponse, Body, HttpClient, Request, StatusCode, Transport,
    },
    Bytes,
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};
use tokio::net::TcpStream;

/// Environment variables that configure a proxy; when one is set, [`default_transport`] leaves
/// the request to `azure_core`'s default transport, which honours them.
const PROXY_VARIABLES: &[&str] =
    &["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

/// The transport a Communication Services client uses when its options name none: an
/// [`Http1Transport`], or `azure_core`'s default transport when a proxy variable is set.
pub fn default_transport() -> Transport {
    if proxy_configured() {
        Transport::new(azure_core::http::new_http_client(None))
    } else {
        Transport::new(Arc::new(Http1Transport::new()))
    }
}

/// Whether the environment names a proxy (`HTTPS_PROXY`, `HTTP_PROXY` or `ALL_PROXY`, in upper
/// or lower case), which [`Http1Transport`] would not use.
pub fn proxy_configured() -> bool {
    proxy_configured_with(|name| std::env::var_os(name))
}

/// Whether any of [`PROXY_VARIABLES`] is set to something, as `lookup` reads them.
fn proxy_configured_with(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    PROXY_VARIABLES.iter().any(|name| lookup(name).is_some_and(|value| !value.is_empty()))
}

/// An HTTP/1.1 keep-alive transport for the `azure_core` pipeline; see the [module](self) docs.
///
/// Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Http1Transport {
    inner: Arc<Inner>,
}

struct Inner {
    options: Http1TransportOptions,
    /// Built on the first `https` connection: loading the platform's roots takes milliseconds.
    tls: OnceLock<Result<tokio_rustls::TlsConnector, String>>,
    idle: Mutex<HashMap<PoolKey, Vec<Idle>>>,
}

/// Where a pooled connection goes.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    https: bool,
    host: String,
    port: u16,
}

/// A connection waiting for its next request.
struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

/// Options for an [`Http1Transport`].
#[derive(Clone)]
pub struct Http1TransportOptions {
    /// How long to wait for a TCP connection (and the TLS handshake). Default 20 s.
    pub connect_timeout: Duration,
    /// How long to wait for the whole response, head and body, once the request is sent.
    /// Default 60 s.
    pub response_timeout: Duration,
    /// How long an unused connection is kept. Default 90 s.
    pub idle_timeout: Duration,
    /// How many unused connections are kept per scheme, host and port. Default 32.
    pub max_idle_per_host: usize,
    /// Certificates trusted as roots in addition to the platform's (for example a development
    /// CA), DER-encoded.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl Default for Http1TransportOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(20),
            response_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(90),
            max_idle_per_host: 32,
            extra_roots: Vec::new(),
        }
    }
}

impl fmt::Debug for Http1TransportOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http1TransportOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_idle_per_host", &self.max_idle_per_host)
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

impl Http1TransportOptions {
    /// Adds the certificates of a PEM file's contents to [`extra_roots`](Self::extra_roots).
    ///
    /// # Errors
    ///
    /// Fails when `pem` holds no certificate or one that cannot be read.
    pub fn add_root_certificates_pem(&mut self, pem: &[u8]) -> azure_core::Result<()> {
        let mut added = 0;
        for certificate in rustls_pemfile::certs(&mut &pem[..]) {
            let certificate = certificate
                .with_context(ErrorKind::Other, "cannot read a certificate of the PEM data")?;
            self.extra_roots.push(certificate);
            added += 1;
        }
        if added == 0 {
            return Err(Error::with_message(ErrorKind::Other, "the PEM data holds no certificate"));
        }
        Ok(())
    }
}

impl Default for Http1Transport {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Http1Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http1Transport")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Http1Transport {
    /// A transport with the default [`Http1TransportOptions`].
    pub fn new() -> Self {
        Self::with_options(Http1TransportOptions::default())
    }

    /// A transport with the given options.
    pub fn with_options(options: Http1TransportOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                tls: OnceLock::new(),
                idle: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The number of open, unused connections in the pool, for tests and diagnostics.
    pub fn idle_connections(&self) -> usize {
        self.inner
            .idle
            .lock()
            .map(|idle| idle.values().flatten().filter(|conn| !conn.sender.is_closed()).count())
            .unwrap_or(0)
    }

    /// An unused, open connection to `key`, if the pool has one.
    fn checkout(&self, key: &PoolKey) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.inner.idle.lock().ok()?;
        let list = idle.get_mut(key)?;
        let idle_timeout = self.inner.options.idle_timeout;
        // Newest first: the most recently used connection is the least likely to be closed.
        while let Some(candidate) = list.pop() {
            if !candidate.sender.is_closed() && candidate.since.elapsed() < idle_timeout {
                return Some(candidate.sender);
            }
        }
        None
    }

    /// Returns a connection whose last response has been read in full.
    fn checkin(&self, key: PoolKey, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let Ok(mut idle) = self.inner.idle.lock() else {
            return;
        };
        let list = idle.entry(key).or_default();
        let idle_timeout = self.inner.options.idle_timeout;
        list.retain(|conn| !conn.sender.is_closed() && conn.since.elapsed() < idle_timeout);
        if list.len() < self.inner.options.max_idle_per_host {
            list.push(Idle { sender, since: Instant::now() });
        }
    }

    fn tls(&self) -> azure_core::Result<tokio_rustls::TlsConnector> {
        let tls = self.inner.tls.get_or_init(|| {
            tls_connector(&self.inner.options.extra_roots).map_err(|e| e.to_string())
        });
        tls.clone().map_err(|message| {
            Error::with_message(
                ErrorKind::Connection,
                format!("cannot set up TLS for https requests: {message}"),
            )
        })
    }

    /// Opens a new connection to `key` and spawns the task that drives it.
    async fn connect(&self, key: &PoolKey) -> azure_core::Result<SendRequest<Full<Bytes>>> {
        let timeout = self.inner.options.connect_timeout;
        let connecting = async {
            let tcp = TcpStream::connect((key.host.as_str(), key.port)).await?;
            tcp.set_nodelay(true)?;
            if key.https {
                let tls = self.tls()?;
                let name = ServerName::try_from(key.host.clone()).map_err(|e| {
                    Error::with_error(ErrorKind::Connection, e, "the host is not a valid TLS name")
                })?;
                let stream = tls.connect(name, tcp).await.map_err(|e| untrusted(e, key))?;
                handshake(TokioIo::new(stream)).await
            } else {
                handshake(TokioIo::new(tcp)).await
            }
        };
        match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(sender)) => Ok(sender),
            // Not a `Connection` error: retrying cannot make the certificate trusted.
            Ok(Err(e)) if *e.kind() == ErrorKind::Other => Err(e),
            Ok(Err(e)) => Err(Error::with_error(
                ErrorKind::Connection,
                e,
                format!("cannot connect to {}:{}", key.host, key.port),
            )),
            Err(_) => Err(Error::with_message(
                ErrorKind::Connection,
                format!("connecting to {}:{} took longer than {timeout:?}", key.host, key.port),
            )),
        }
    }
}

/// A TLS handshake failure; one about the server's certificate becomes an [`ErrorKind::Other`]
/// error, which the pipeline does not retry.
fn untrusted(e: std::io::Error, key: &PoolKey) -> Error {
    let certificate = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .filter(|inner| matches!(inner, rustls::Error::InvalidCertificate(_)))
        .map(ToString::to_string);
    match certificate {
        Some(reason) => Error::with_message(
            ErrorKind::Other,
            format!("the certificate of {}:{} is not trusted: {reason}", key.host, key.port),
        ),
        None => e.into(),
    }
}

/// The HTTP/1.1 handshake on an open stream; the connection runs on its own task.
async fn handshake<T>(io: T) -> azure_core::Result<SendRequest<Full<Bytes>>>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .with_context(ErrorKind::Connection, "the HTTP/1.1 handshake failed")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "HTTP/1.1 connection closed with an error");
        }
    });
    Ok(sender)
}

fn tls_connector(
    extra_roots: &[CertificateDer<'static>],
) -> Result<tokio_rustls::TlsConnector, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = if extra_roots.is_empty() {
        rustls_platform_verifier::Verifier::new(provider.clone())?
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(
            extra_roots.iter().cloned(),
            provider.clone(),
        )?
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[async_trait::async_trait]
impl HttpClient for Http1Transport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let url = request.url();
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(Error::with_message(
                    ErrorKind::Other,
                    format!("cannot send a request to a '{other}' URL: only http and https"),
                ))
            }
        };
        let host = url
            .host_str()
            .ok_or_else(|| Error::with_message(ErrorKind::Other, "the request URL has no host"))?;
        let key = PoolKey {
            https,
            // `[::1]` in the URL; the socket address wants `::1`.
            host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            port: url.port_or_known_default().unwrap_or(if https { 443 } else { 80 }),
        };
        let mut outgoing = to_hyper(request).await?;
        let timeout = self.inner.options.response_timeout;
        // Pooled connections first; a request that one of them did not take goes to the next,
        // and finally to a new connection.
        loop {
            let (mut sender, fresh) = match self.checkout(&key) {
                Some(sender) => (sender, false),
                None => (self.connect(&key).await?, true),
            };
            let exchange = async {
                // Wait until the connection takes a request: right after the last response it
                // may still be finishing up on its own task. An error here means it closed.
                if let Err(e) = sender.ready().await {
                    return Err((Some(outgoing), e));
                }
                let response = match sender.try_send_request(outgoing).await {
                    Ok(response) => response,
                    Err(mut e) => return Err((e.take_message(), e.into_error())),
                };
                let (parts, body) = response.into_parts();
                let body = body.collect().await.map_err(|e| (None, e))?.to_bytes();
                Ok((parts, body))
            };
            let (parts, body) = match tokio::time::timeout(timeout, exchange).await {
                Ok(Ok(done)) => done,
                Ok(Err((Some(unsent), e))) if !fresh => {
                    // The pooled connection closed before the request was written.
                    tracing::debug!(error = %e, "a pooled connection was closed; trying another");
                    outgoing = unsent;
                    continue;
                }
                Ok(Err((_, e))) => {
                    return Err(Error::with_error(ErrorKind::Io, e, "the HTTP request failed"))
                }
                Err(_) => {
                    return Err(Error::with_message(
                        ErrorKind::Io,
                        format!("no complete response within {timeout:?}"),
                    ))
                }
            };
            self.checkin(key, sender);
            let headers = from_hyper(&parts.headers);
            let status = StatusCode::from(parts.status.as_u16());
            return Ok(AsyncRawResponse::from_bytes(status, headers, body));
        }
    }
}

/// The `azure_core` request as a hyper request in origin form, with its `Host` header.
async fn to_hyper(request: &Request) -> azure_core::Result<hyper::Request<Full<Bytes>>> {
    let url = request.url();
    let target = match url.query() {
        Some(query) => {
            let mut target = String::with_capacity(url.path().len() + 1 + query.len());
            target.push_str(url.path());
            target.push('?');
            target.push_str(query);
            target
        }
        None => url.path().to_owned(),
    };
    let invalid = |what: &str| {
        Error::with_message(ErrorKind::Other, format!("the request has an invalid {what}"))
    };
    let body = match request.body() {
        Body::Bytes(bytes) => bytes.clone(),
        Body::SeekableStream(stream) => {
            use futures::io::AsyncReadExt as _;
            let mut stream = stream.clone();
            stream.reset().await?;
            let mut buffer = Vec::with_capacity(stream.len().unwrap_or(0).try_into().unwrap_or(0));
            stream.read_to_end(&mut buffer).await?;
            Bytes::from(buffer)
        }
    };
    let mut outgoing = hyper::Request::new(Full::new(body));
    *outgoing.method_mut() = hyper::Method::from_bytes(request.method().as_str().as_bytes())
        .map_err(|_| invalid("method"))?;
    *outgoing.uri_mut() = hyper::Uri::try_from(target).map_err(|_| invalid("path or query"))?;
    let headers = outgoing.headers_mut();
    headers.reserve(request.headers().iter().size_hint().0 + 1);
    let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
    headers.insert(
        hyper::header::HOST,
        hyper::header::HeaderValue::from_str(authority).map_err(|_| invalid("host"))?,
    );
    for (name, value) in request.headers().iter() {
        // The error names the header but never shows its value, which may be a secret.
        let header_name = hyper::header::HeaderName::from_bytes(name.as_str().as_bytes())
            .map_err(|_| invalid("header name"))?;
        let header_value = hyper::header::HeaderValue::from_str(value.as_str())
            .map_err(|_| invalid(&format!("value of the header '{}'", name.as_str())))?;
        if header_name == hyper::header::HOST {
            // A `Host` the caller set wins over the URL's.
            headers.insert(header_name, header_value);
        } else {
            headers.append(header_name, header_value);
        }
    }
    Ok(outgoing)
}

/// The response headers as `azure_core` headers; values that are not text are dropped, as
/// `azure_core`'s own transport does.
fn from_hyper(headers: &hyper::HeaderMap) -> Headers {
    let mut map = HashMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            map.insert(header_name(name), HeaderValue::from(value.to_owned()));
        }
    }
    Headers::from(map)
}

/// Names the service sends on every response, without the allocation and case check of
/// `HeaderName::from(String)`.
const COMMON_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "date",
    "ms-cv",
    "x-ms-client-request-id",
    "x-processing-time",
    "request-context",
    "strict-transport-security",
    "api-supported-versions",
    "x-ms-error-code",
    "retry-after",
    "www-authenticate",
];

fn header_name(name: &hyper::header::HeaderName) -> HeaderName {
    let name = name.as_str();
    match COMMON_RESPONSE_HEADERS.iter().find(|common| **common == name) {
        Some(common) => HeaderName::from_static(common),
        // hyper's names are lower case already.
        None => HeaderName::from(name.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::{Method, Url};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// How a test server answers each request it reads.
    #[derive(Clone, Copy)]
    enum Answer {
        /// `200` with a small JSON body, keeping the connection open.
        Json,
        /// `200` with `connection: close`, then closes.
        JsonThenClose,
        /// `200`, then closes without saying so.
        JsonThenDrop,
        /// Reads the request and never answers.
        Silence,
        /// On the first connection: reads the request and closes without answering; later
        /// connections answer `Json`.
        DropFirst,
    }

    /// A raw HTTP/1.1 server on `127.0.0.1:0` that records what it read.
    struct TestServer {
        url: Url,
        accepted: Arc<AtomicUsize>,
        requests: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    async fn serve(answer: Answer) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url =
            Url::parse(&format!("http://{}/", listener.local_addr().expect("addr"))).expect("url");
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (accepted.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let first = count.fetch_add(1, Ordering::SeqCst) == 0;
                let log = log.clone();
                tokio::spawn(async move {
                    while let Some(request) = read_request(&mut socket).await {
                        log.lock().expect("log").push(request);
                        let (extra, close) = match answer {
                            Answer::DropFirst if first => return,
                            Answer::Json | Answer::DropFirst => ("", false),
                            Answer::JsonThenClose => ("connection: close\r\n", true),
                            Answer::JsonThenDrop => ("", true),
                            Answer::Silence => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                return;
                            }
                        };
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             x-test: yes\r\n{extra}content-length: 11\r\n\r\n{{\"ok\":true}}"
                        );
                        if socket.write_all(response.as_bytes()).await.is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        TestServer { url, accepted, requests }
    }

    /// Reads one request with a `content-length` body; `None` at end of stream.
    async fn read_request(socket: &mut TcpStream) -> Option<Vec<u8>> {
        let mut data = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map_or(0, |value| value.trim().parse().expect("content-length"));
                if data.len() >= end + 4 + length {
                    return Some(data);
                }
            }
            let read = socket.read(&mut buffer).await.ok()?;
            if read == 0 {
                return None;
            }
            data.extend_from_slice(&buffer[..read]);
        }
    }

    fn post(url: &Url, path_and_query: &str) -> Request {
        let mut request = Request::new(url.join(path_and_query).expect("url"), Method::Post);
        request.insert_header("x-ms-custom", "value");
        request.insert_header("content-type", "application/json");
        request.set_body(r#"{"a":1}"#);
        request
    }

    #[tokio::test]
    async fn sends_the_request_as_built_and_returns_the_response() {
        let server = serve(Answer::Json).await;
        let transport = Http1Transport::new();
        let request = post(&server.url, "/identities/8%3Aacs%3Ax/:issueAccessToken?api-version=v1");
        let response = transport.execute_request(&request).await.expect("response");
        assert_eq!(response.status(), StatusCode::Ok);
        assert_eq!(
            response.headers().get_optional_str(&HeaderName::from_static("x-test")),
            Some("yes")
        );
        assert_eq!(
            response.headers().get_optional_str(&HeaderName::from_static("content-type")),
            Some("application/json")
        );
        let body = response.into_body().collect().await.expect("body");
        assert_eq!(&body[..], br#"{"ok":true}"#);

        let requests = server.requests.lock().expect("log").clone();
        let text = String::from_utf8(requests[0].clone()).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let mut lines = head.lines();
        assert_eq!(
            lines.next(),
            Some("POST /identities/8%3Aacs%3Ax/:issueAccessToken?api-version=v1 HTTP/1.1")
        );
        let headers: Vec<String> = lines.map(str::to_ascii_lowercase).collect();
        let port = server.url.port().expect("port");
        for expected in [
            format!("host: 127.0.0.1:{port}"),
            "x-ms-custom: value".to_owned(),
            "content-type: application/json".to_owned(),
            "content-length: 7".to_owned(),
        ] {
            assert!(headers.contains(&expected), "{expected} missing from {headers:?}");
        }
        assert_eq!(body, r#"{"a":1}"#);
    }

    #[tokio::test]
    async fn a_host_header_set_by_the_caller_replaces_the_urls() {
        let server = serve(Answer::Json).await;
        let mut request = post(&server.url, "/x");
        request.insert_header("host", "contoso.communication.azure.com");
        Http1Transport::new().execute_request(&request).await.expect("response");
        let head = String::from_utf8(server.requests.lock().expect("log")[0].clone())
            .expect("utf-8")
            .to_ascii_lowercase();
        let hosts: Vec<&str> = head.lines().filter(|line| line.starts_with("host:")).collect();
        assert_eq!(hosts, ["host: contoso.communication.azure.com"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_one_connection_for_sequential_requests() {
        // On two worker threads the connection's task and the caller run in parallel: the
        // next request must wait for the connection to be ready, not open another.
        let server = serve(Answer::Json).await;
        let transport = Http1Transport::new();
        for _ in 0..200 {
            let response =
                transport.execute_request(&post(&server.url, "/x")).await.expect("response");
            response.into_body().collect().await.expect("body");
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
        assert_eq!(server.requests.lock().expect("log").len(), 200);
        assert_eq!(transport.idle_connections(), 1);
    }

    #[tokio::test]
    async fn opens_a_connection_per_concurrent_request_and_keeps_them() {
        let server = serve(Answer::Json).await;
        let transport = Http1Transport::new();
        let requests: Vec<Request> = (0..4).map(|_| post(&server.url, "/x")).collect();
        let responses =
            futures::future::join_all(requests.iter().map(|r| transport.execute_request(r))).await;
        assert!(responses.iter().all(|r| r.as_ref().is_ok_and(|r| r.status() == StatusCode::Ok)));
        assert_eq!(server.accepted.load(Ordering::SeqCst), 4);
        assert_eq!(transport.idle_connections(), 4);
    }

    #[tokio::test]
    async fn does_not_reuse_a_connection_the_server_ended() {
        // With `connection: close` hyper knows at once; a bare close is seen by the
        // connection task, so the test lets it run before the next request.
        for answer in [Answer::JsonThenClose, Answer::JsonThenDrop] {
            let server = serve(answer).await;
            let transport = Http1Transport::new();
            for _ in 0..3 {
                let response =
                    transport.execute_request(&post(&server.url, "/x")).await.expect("response");
                assert_eq!(response.status(), StatusCode::Ok);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
            assert_eq!(server.requests.lock().expect("log").len(), 3);
            assert_eq!(transport.idle_connections(), 0);
        }
    }

    #[tokio::test]
    async fn the_pipeline_retries_a_request_whose_connection_was_lost() {
        use azure_core::http::{
            ClientOptions, Context, ExponentialRetryOptions, Pipeline, RetryOptions,
        };
        let server = serve(Answer::DropFirst).await;
        let options = ClientOptions {
            transport: Some(Transport::new(Arc::new(Http1Transport::new()))),
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::milliseconds(10),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pipeline = Pipeline::new(None, None, options, Vec::new(), Vec::new(), None);
        let mut request = post(&server.url, "/x");
        let response =
            pipeline.send(&Context::new(), &mut request, None).await.expect("retried response");
        assert_eq!(response.status(), StatusCode::Ok);
        assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
        assert_eq!(server.requests.lock().expect("log").len(), 2);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connection_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url =
            Url::parse(&format!("http://{}/", listener.local_addr().expect("addr"))).expect("url");
        drop(listener);
        let error = Http1Transport::new().execute_request(&post(&url, "/x")).await.unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::Connection);
        assert!(error.to_string().contains("cannot connect to 127.0.0.1:"), "{error}");
    }

    #[tokio::test]
    async fn a_response_that_never_comes_times_out_as_an_io_error() {
        let server = serve(Answer::Silence).await;
        let transport = Http1Transport::with_options(Http1TransportOptions {
            response_timeout: Duration::from_millis(200),
            ..Default::default()
        });
        let error = transport.execute_request(&post(&server.url, "/x")).await.unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::Io);
        assert!(error.to_string().contains("no complete response within"), "{error}");
        assert_eq!(transport.idle_connections(), 0);
    }

    #[tokio::test]
    async fn refuses_other_schemes_and_invalid_headers_without_sending() {
        let server = serve(Answer::Json).await;
        let transport = Http1Transport::new();
        let ftp = Request::new(Url::parse("ftp://127.0.0.1/x").expect("url"), Method::Get);
        let error = transport.execute_request(&ftp).await.unwrap_err();
        assert!(error.to_string().contains("only http and https"), "{error}");

        let mut bad = post(&server.url, "/x");
        bad.insert_header("authorization", "secret-value\r\ninjected: 1");
        let error = transport.execute_request(&bad).await.unwrap_err();
        let message = format!("{error} {error:?}");
        assert!(message.contains("'authorization'"), "{message}");
        assert!(!message.contains("secret-value"), "the header value leaked: {message}");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn proxy_variables_send_requests_through_azure_core_default_transport() {
        assert!(!proxy_configured_with(|_| None));
        assert!(!proxy_configured_with(|_| Some("".into())));
        assert!(proxy_configured_with(|name| {
            (name == "https_proxy").then(|| "http://proxy:3128".into())
        }));
        assert!(proxy_configured_with(|name| {
            (name == "ALL_PROXY").then(|| "socks5://proxy".into())
        }));
    }

    #[test]
    fn pem_roots_are_read_and_empty_pem_is_refused() {
        let mut options = Http1TransportOptions::default();
        let error = options.add_root_certificates_pem(b"not a certificate").unwrap_err();
        assert!(error.to_string().contains("holds no certificate"), "{error}");
        assert!(options.extra_roots.is_empty());
        assert_eq!(
            format!("{options:?}"),
            "Http1TransportOptions { connect_timeout: 20s, response_timeout: 60s, \
             idle_timeout: 90s, max_idle_per_host: 32, extra_roots: 0 }"
        );
    }
}
