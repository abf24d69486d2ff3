//! Request limits against the real service: request head size (431), slow bodies (408),
//! idle connections (closed), and requests in flight (503), each with ACS's error body
//! where the HTTP layer can give one.
//!
//! The slow and idle cases speak HTTP/1.1 (and HTTP/2) over raw sockets to the plain-HTTP
//! listener, so what is sent and when is exactly what the test says. Time bounds are
//! generous: they only catch a limit that is not enforced at all.

use std::net::SocketAddr;
use std::time::Duration;

use acs_identity_core::SystemClock;
use acs_identity_testkit::{TestResponse, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// Far beyond any limit configured here: reaching it means the limit did not act.
const GENEROUS: Duration = Duration::from_secs(15);

async fn start(tweak: impl FnOnce(&mut acs_identity_server::Config)) -> TestServer {
    TestServer::start_with(tweak, std::sync::Arc::new(SystemClock)).await
}

pub(crate) fn http_addr(s: &TestServer) -> SocketAddr {
    s.inner().http_addr().expect("plain HTTP listener")
}

/// A response read off a raw HTTP/1.1 connection.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    head: String,
    body: String,
}

impl RawResponse {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one response (head and `Content-Length` body); `None` when the connection closes
/// or fails before a whole head arrives.
pub(crate) async fn read_response(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<RawResponse> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut response = RawResponse { status, head, body: String::new() };
    let length: usize = response.header("content-length").and_then(|v| v.parse().ok())?;
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    response.body = String::from_utf8_lossy(&body[..length]).into_owned();
    Some(response)
}

/// Waits for the server to close the connection: `Ok(true)` on EOF or reset.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn a_client_that_sends_a_whole_oversized_body_reads_its_413() {
    // Clients write the whole body before reading; the service reads (and drops) the rest of
    // an oversized body before answering, so the 413 is read rather than lost to a reset.
    let s = start(|_| {}).await;
    let size = 1024 * 1024;
    let path = "/identities?api-version=2023-10-01";
    for chunked in [false, true] {
        for _ in 0..5 {
            let mut stream = TcpStream::connect(http_addr(&s)).await.unwrap();
            let framing = if chunked {
                "transfer-encoding: chunked".to_owned()
            } else {
                format!("content-length: {size}")
            };
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                 {framing}\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let piece = vec![b' '; 16 * 1024];
            for _ in 0..size / piece.len() {
                if chunked {
                    stream.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await.unwrap();
                    stream.write_all(&piece).await.unwrap();
                    stream.write_all(b"\r\n").await.unwrap();
                } else {
                    stream.write_all(&piece).await.unwrap();
                }
            }
            if chunked {
                stream.write_all(b"0\r\n\r\n").await.unwrap();
            }
            let response = timeout(GENEROUS, read_response(&mut stream))
                .await
                .expect("an answer in time")
                .expect("the 413, not a reset");
            assert_eq!(response.status, 413, "{response:?}");
            assert_eq!(response.json()["error"]["code"], "PayloadTooLarge", "{response:?}");
        }
    }
}

#[tokio::test]
async fn oversized_request_heads_get_431() {
    let s = start(|_| {}).await;
    let limit = acs_identity_server::Config::default().max_header_bytes;

    // Just under the limit: served.
    let r = s
        .request(Method::POST, "/identities?api-version=2023-10-01")
        .json(&json!({}))
        .header("x-padding", &"a".repeat(limit - 2048))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // Over the limit (in one field, and spread over many): ACS's envelope, before auth.
    let r = s
        .request(Method::POST, "/identities?api-version=2023-10-01")
        .json(&json!({}))
        .header("x-padding", &"a".repeat(limit + 1))
        .send()
        .await;
    let msg = r.assert_error(431, "RequestHeaderFieldsTooLarge");
    assert!(msg.contains(&limit.to_string()), "{msg}");
    assert!(r.header("ms-cv").is_some(), "431 goes through the request log layer");
    let mut req = s.request(Method::GET, "/identities/x?api-version=2025-03-02-preview").unsigned();
    for i in 0..40 {
        req = req.header(&format!("x-pad-{i}"), &"b".repeat(limit / 30));
    }
    req.send().await.assert_error(431, "RequestHeaderFieldsTooLarge");

    // More than 100 header fields: hyper's parser refuses the head itself, with a bare 431
    // (no body) and a closed connection; the service never sees the request.
    let mut stream = TcpStream::connect(http_addr(&s)).await.unwrap();
    let mut head = String::from("GET /healthz HTTP/1.1\r\nhost: localhost\r\n");
    for i in 0..120 {
        head.push_str(&format!("x-h{i}: v\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let r = timeout(GENEROUS, read_response(&mut stream)).await.unwrap().expect("a response");
    assert_eq!(r.status, 431, "{r:?}");
    assert_eq!(r.body, "", "hyper's own 431 has no body");
    assert!(closed_by_server(&mut stream, GENEROUS).await);

    // Over twice the limit: hyper stops buffering and answers a bare 431 or, if the client
    // is still sending, resets the connection. Never a response from the service.
    let mut stream = TcpStream::connect(http_addr(&s)).await.unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-padding: {}\r\n\r\n",
        "c".repeat(2 * limit + 1024)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    // `None` is a reset while sending: the parser refused the head before the service.
    if let Some(r) =
        timeout(GENEROUS, read_response(&mut stream)).await.expect("answered or closed")
    {
        assert!(r.status == 431 && r.body.is_empty(), "{r:?}");
    }

    // The service is unaffected.
    let r = s.request(Method::GET, "/healthz").unsigned().send().await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_body_slower_than_the_request_timeout_gets_408() {
    let s = start(|c| c.request_timeout_seconds = 1).await;
    let mut stream = TcpStream::connect(http_addr(&s)).await.unwrap();
    // A signed-looking create whose body never completes: the body is read before the
    // signature is checked, so the timeout is what ends it.
    let head = "POST /identities?api-version=2023-10-01 HTTP/1.1\r\nhost: localhost\r\n\
                content-type: application/json\r\ncontent-length: 1000\r\n\
                x-ms-client-request-id: slow-loris-1\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let drip = tokio::spawn(async move {
        // One byte every 200 ms: the connection is never idle, the request never done.
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let r = timeout(GENEROUS, read_response(&mut read)).await.unwrap().expect("a 408");
    drip.abort();
    assert_eq!(r.status, 408, "{r:?}");
    assert_eq!(r.json()["error"]["code"], "RequestTimeout", "{r:?}");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("limit of 1 s"));
    assert_eq!(r.header("x-ms-client-request-id"), Some("slow-loris-1"));
    assert!(started.elapsed() >= Duration::from_millis(500), "answered before the timeout");

    // Meanwhile and afterwards, other requests are served normally.
    let r = s.post("/identities?api-version=2023-10-01", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let s = start(|c| c.idle_timeout_seconds = 1).await;

    // HTTP/1.1 keep-alive: two requests on one connection, then silence.
    let mut stream = TcpStream::connect(http_addr(&s)).await.unwrap();
    for _ in 0..2 {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n").await.unwrap();
        let r = timeout(GENEROUS, read_response(&mut stream)).await.unwrap().expect("served");
        assert_eq!(r.status, 200, "{r:?}");
    }
    let idle_from = Instant::now();
    assert!(closed_by_server(&mut stream, GENEROUS).await, "idle HTTP/1.1 connection kept");
    assert!(idle_from.elapsed() >= Duration::from_millis(500), "closed before the idle timeout");

    // A request head that trickles in never completes: the connection is closed, unanswered.
    let mut stream = TcpStream::connect(http_addr(&s)).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n").await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let drip = tokio::spawn(async move {
        for i in 0..200 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write.write_all(format!("x-{i}: 1\r\n").as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let answered = timeout(GENEROUS, read_response(&mut read)).await.expect("closed in time");
    drip.abort();
    assert!(answered.is_none(), "a head that never ends got {answered:?}");

    // HTTP/2 (prior knowledge on the plain listener): the server ends an idle connection
    // with GOAWAY, which completes the client's connection future.
    let tcp = TcpStream::connect(http_addr(&s)).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request =
        axum::http::Request::get(format!("http://{}/healthz", http_addr(&s))).body(()).unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let idle_from = Instant::now();
    // `client` stays alive: the client itself would close a connection nobody can use.
    let ended = timeout(GENEROUS, connection).await;
    assert!(ended.is_ok(), "idle HTTP/2 connection kept open");
    assert!(idle_from.elapsed() >= Duration::from_millis(500), "closed before the idle timeout");
    drop(client);
}

/// Opens a request that stays in flight: its head is complete, its body never arrives.
pub(crate) async fn hold_a_request(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /identities?api-version=2023-10-01 HTTP/1.1\r\nhost: localhost\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    stream
}

/// Asks `/healthz` (with an `Origin` header, if given) until the server refuses with 503: the
/// in-flight limit applies as soon as the server has read the held requests' heads. Every
/// answer before must be 200.
pub(crate) async fn healthz_until_refused(s: &TestServer, origin: Option<&str>) -> TestResponse {
    let deadline = Instant::now() + GENEROUS;
    loop {
        let mut request = s.request(Method::GET, "/healthz").unsigned();
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let r = request.send().await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            return r;
        }
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(Instant::now() < deadline, "the in-flight limit never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_get_503() {
    let s = start(|c| {
        c.max_in_flight_requests = 2;
        c.request_timeout_seconds = 120;
    })
    .await;
    let held = vec![hold_a_request(http_addr(&s)).await, hold_a_request(http_addr(&s)).await];

    // The two held requests take the two places (as soon as the server has read their
    // heads); from then on every request is refused at once, not queued.
    let refused = healthz_until_refused(&s, None).await;
    refused.assert_error(503, "ServiceUnavailable");
    assert_eq!(refused.header("retry-after"), Some("1"));
    let started = Instant::now();
    let r = s.post("/identities?api-version=2023-10-01", json!({})).await;
    assert_eq!(r.json["error"]["code"], "ServiceUnavailable", "{}", r.text);
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(10), "a refused request was queued");
    let count = s.inner().state().store().count_identities().await.unwrap();
    assert_eq!(count, 0, "a refused create wrote something");

    // Closing the held connections frees the places.
    drop(held);
    let deadline = Instant::now() + GENEROUS;
    loop {
        let r = s.post("/identities?api-version=2023-10-01", json!({})).await;
        if r.status == StatusCode::CREATED {
            break;
        }
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
        assert!(Instant::now() < deadline, "places were never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
