//! A minimal HTTP/1.1 client: one request at a time per keep-alive connection, requests
//! signed with the access key exactly as the official SDKs sign them (HMAC-SHA256 over
//! `VERB\npath?query\ndate;host;content-hash`).

use acs_identity_core::clock::{Clock as _, SystemClock};
use acs_identity_core::hmac::{authorization_header, content_hash, string_to_sign, AccessKey};
use acs_identity_core::time_format::http_date;
use anyhow::{bail, Context as _};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest response body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Signs requests for one `Host`, reusing the date string within a second.
#[derive(Debug)]
pub(crate) struct Signer {
    key: AccessKey,
    host: String,
    date_second: i64,
    date: String,
}

impl Signer {
    pub(crate) fn new(key: AccessKey, host: String) -> Self {
        Signer { key, host, date_second: i64::MIN, date: String::new() }
    }

    fn date(&mut self) -> &str {
        let now = SystemClock.now();
        if now.unix_timestamp() != self.date_second {
            self.date_second = now.unix_timestamp();
            self.date = http_date(now);
        }
        &self.date
    }

    /// Writes a complete signed request into `out` (cleared first).
    pub(crate) fn build(
        &mut self,
        out: &mut Vec<u8>,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) {
        let date = self.date().to_owned();
        build_request(out, &self.key, &self.host, &date, method, path_and_query, body);
    }
}

/// Writes a complete signed request into `out` (cleared first).
pub(crate) fn build_request(
    out: &mut Vec<u8>,
    key: &AccessKey,
    host: &str,
    date: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) {
    use std::io::Write as _;
    let hash = content_hash(body);
    let signature = key.sign(&string_to_sign(method, path_and_query, date, host, &hash));
    out.clear();
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{method} {path_and_query} HTTP/1.1\r\n\
         Host: {host}\r\n\
         x-ms-date: {date}\r\n\
         x-ms-content-sha256: {hash}\r\n\
         Authorization: {auth}\r\n\
         Accept: application/json\r\n\
         Content-Type: application/json\r\n\
         Content-Length: {len}\r\n\
         \r\n",
        auth = authorization_header(&signature),
        len = body.len(),
    );
    out.extend_from_slice(body);
}

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length` bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// No body (1xx, 204, 304).
    Empty,
    /// Until the server closes the connection.
    UntilClose,
}

/// A parsed status line and the headers that matter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// Bytes of the head, final CRLF CRLF included.
    pub(crate) len: usize,
    pub(crate) framing: Framing,
    /// The server will close the connection after this response.
    pub(crate) close: bool,
}

/// Parses a response head at the start of `buf`; `None` until it is complete.
pub(crate) fn parse_head(buf: &[u8]) -> anyhow::Result<Option<Head>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            bail!("response head longer than {MAX_HEAD} bytes");
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).context("response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        bail!("not an HTTP/1.x response: {status_line:?}");
    }
    let status: u16 = match parts.next().map(str::parse) {
        Some(Ok(s)) if (100..1000).contains(&s) => s,
        _ => bail!("bad status line: {status_line:?}"),
    };
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            bail!("bad header line: {line:?}");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize =
                value.parse().with_context(|| format!("bad Content-Length {value:?}"))?;
            if length.is_some_and(|l| l != n) {
                bail!("conflicting Content-Length headers");
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.split(',').any(|t| t.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            if value.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")) {
                close = true;
            } else if value.split(',').any(|t| t.trim().eq_ignore_ascii_case("keep-alive")) {
                close = false;
            }
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        if n > MAX_BODY {
            bail!("response body of {n} bytes is too large");
        }
        Framing::Length(n)
    } else {
        close = true;
        Framing::UntilClose
    };
    Ok(Some(Head { status, len: end + 4, framing, close }))
}

/// Decodes a chunked body at the start of `buf`: the body and the bytes consumed, or
/// `None` until it is complete.
pub(crate) fn parse_chunked(buf: &[u8]) -> anyhow::Result<Option<(Vec<u8>, usize)>> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[pos..pos + eol]).context("bad chunk size line")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        pos += eol + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(eol) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if body.len() + size > MAX_BODY {
            bail!("chunked response body is too large");
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            bail!("chunk not followed by CRLF");
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

/// A complete response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The connection must not be reused.
    pub(crate) close: bool,
}

/// Reads one response from `io`. `buf` holds bytes read past the previous response and
/// keeps bytes read past this one.
pub(crate) async fn read_response<R: AsyncRead + Unpin + ?Sized>(
    io: &mut R,
    buf: &mut Vec<u8>,
) -> anyhow::Result<Response> {
    let head = loop {
        if let Some(head) = parse_head(buf)? {
            break head;
        }
        fill(io, buf).await?;
    };
    buf.drain(..head.len);
    let body = match head.framing {
        Framing::Empty => Vec::new(),
        Framing::Length(n) => {
            while buf.len() < n {
                fill(io, buf).await?;
            }
            buf.drain(..n).collect()
        }
        Framing::Chunked => loop {
            if let Some((body, used)) = parse_chunked(buf)? {
                buf.drain(..used);
                break body;
            }
            fill(io, buf).await?;
        },
        Framing::UntilClose => {
            loop {
                let before = buf.len();
                buf.reserve(8192);
                let n = io.read_buf(buf).await?;
                if n == 0 || buf.len() - before == 0 {
                    break;
                }
                if buf.len() > MAX_BODY {
                    bail!("response body is too large");
                }
            }
            std::mem::take(buf)
        }
    };
    Ok(Response { status: head.status, body, close: head.close })
}

async fn fill<R: AsyncRead + Unpin + ?Sized>(io: &mut R, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    buf.reserve(8192);
    let n = io.read_buf(buf).await.context("reading the response")?;
    if n == 0 {
        bail!("the server closed the connection mid-response");
    }
    Ok(())
}

/// Sends one request and reads its response.
pub(crate) async fn exchange<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    io: &mut S,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> anyhow::Result<Response> {
    io.write_all(request).await.context("writing the request")?;
    io.flush().await.context("writing the request")?;
    read_response(io, buf).await
}

#[cfg(test)]
mod tests {
    use acs_identity_core::hmac::KeyName;

    use super::*;

    #[test]
    fn parses_a_response_with_content_length() {
        let raw = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 5\r\n\r\nhello";
        let head = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.status, 201);
        assert_eq!(head.framing, Framing::Length(5));
        assert!(!head.close);
        assert_eq!(&raw[head.len..], b"hello");
        assert_eq!(parse_head(&raw[..20]).unwrap(), None);
    }

    #[test]
    fn no_content_has_no_body_and_close_is_seen() {
        let head =
            parse_head(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.status, 204);
        assert_eq!(head.framing, Framing::Empty);
        assert!(head.close);
        let head = parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(head.close);
        let head = parse_head(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.framing, Framing::UntilClose);
        assert!(head.close);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_head(b"SSH-2.0-x\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno-colon\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }

    #[test]
    fn decodes_chunked_bodies() {
        let head =
            parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        let raw = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        let (body, used) = parse_chunked(raw).unwrap().unwrap();
        assert_eq!(body, b"hello, world");
        assert_eq!(&raw[used..], b"NEXT");
        for cut in 0..used {
            assert!(parse_chunked(&raw[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        assert!(parse_chunked(b"zz\r\n").is_err());
        assert!(parse_chunked(b"1\r\nabc\r\n").is_err());
    }

    #[tokio::test]
    async fn reads_back_to_back_responses() {
        let raw: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n\
            HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbad\r\n0\r\n\r\n";
        let mut io = raw;
        let mut buf = Vec::new();
        let a = read_response(&mut io, &mut buf).await.unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"ok"[..]));
        let b = read_response(&mut io, &mut buf).await.unwrap();
        assert_eq!((b.status, b.body.len()), (204, 0));
        let c = read_response(&mut io, &mut buf).await.unwrap();
        assert_eq!((c.status, c.body.as_slice()), (500, &b"bad"[..]));
        assert!(read_response(&mut io, &mut buf).await.is_err());
    }

    #[test]
    fn signs_like_the_sdks() {
        use acs_identity_core::hmac::{verify, SignedRequest};
        use acs_identity_core::time_format::parse_http_date;

        let key = AccessKey::new(KeyName::Primary, b"0123456789abcdef0123456789abcdef");
        let date = "Sun, 22 Nov 2026 10:26:05 GMT";
        let path = "/identities/8%3Aacs%3Ar_u/:issueAccessToken?api-version=2023-10-01";
        let body = br#"{"scopes":["chat"]}"#;
        let mut out = Vec::new();
        build_request(&mut out, &key, "127.0.0.1:8080", date, "POST", path, body);
        let text = String::from_utf8(out.clone()).unwrap();
        let (head, sent_body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(sent_body.as_bytes(), body);
        let mut lines = head.split("\r\n");
        assert_eq!(lines.next(), Some(format!("POST {path} HTTP/1.1").as_str()));
        let header = |name: &str| {
            head.split("\r\n").find_map(|l| {
                let (n, v) = l.split_once(": ")?;
                n.eq_ignore_ascii_case(name).then_some(v)
            })
        };
        assert_eq!(header("host"), Some("127.0.0.1:8080"));
        assert_eq!(header("content-length"), Some("19"));
        let request = SignedRequest {
            method: "POST",
            path_and_query: path,
            hosts: &["127.0.0.1:8080"],
            authorization: header("authorization"),
            x_ms_date: header("x-ms-date"),
            date: None,
            content_hash: header("x-ms-content-sha256"),
            body,
        };
        let now = parse_http_date(date).unwrap();
        assert_eq!(verify(&request, std::slice::from_ref(&key), now), Ok(KeyName::Primary));

        // The documented hash of an empty body.
        build_request(&mut out, &key, "h", date, "POST", "/identities", b"");
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("x-ms-content-sha256: 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\r\n")
        );
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }
}
