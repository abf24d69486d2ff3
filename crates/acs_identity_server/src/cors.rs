//! CORS, so that a page on another origin (a development server on `http://localhost:3000`)
//! can call the service with the official JS SDK bundled for the browser.
//!
//! tower-http's `CorsLayer` writes the headers. Around it this module decides which requests
//! it sees and finishes its answers: only a real preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) is answered by the layer, with `204`; any other `OPTIONS`
//! goes to the routes as if CORS were off (ACS's `405`/`404`); and an answer to an origin
//! that is not allowed carries no `Access-Control-*` header at all. Nothing here is ambient
//! (no cookies: every request carries its own signature or bearer token), so any origin is
//! allowed by default and `Access-Control-Allow-Credentials` is never sent.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Deserializer};
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may reuse a preflight answer (Chromium caps it at 2 h).
pub(crate) const MAX_AGE: Duration = Duration::from_secs(7200);

/// The configured value that allows every origin.
pub(crate) const ANY_ORIGIN: &str = "*";

/// Methods of the API.
const ALLOW_METHODS: [Method; 5] =
    [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

/// Request headers the SDKs send from a browser (or the API reads): authentication,
/// content, correlation, tracing, and the repeatability headers of 2023-08-01.
const ALLOW_HEADERS: [&str; 12] = [
    "accept",
    "authorization",
    "content-type",
    "x-ms-date",
    "x-ms-content-sha256",
    "x-ms-client-request-id",
    "x-ms-return-client-request-id",
    "x-ms-useragent",
    "traceparent",
    "tracestate",
    "repeatability-request-id",
    "repeatability-first-sent",
];

/// Response headers a page may read: correlation (`MS-CV`, the echoed client request id,
/// `X-Processing-Time`), `api-supported-versions`, and the retry hints of 429 and 503.
const EXPOSE_HEADERS: [&str; 8] = [
    "ms-cv",
    "x-ms-client-request-id",
    "x-ms-request-id",
    "x-processing-time",
    "api-supported-versions",
    "retry-after",
    "retry-after-ms",
    "x-ms-retry-after-ms",
];

/// Reads `cors_allowed_origins`: a list, or one string of comma-separated origins (as an
/// environment variable or a flag gives it); blank entries are dropped, so `""` is `[]`.
pub(crate) fn deserialize_origins<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Origins {
        One(String),
        List(Vec<String>),
    }
    let raw = match Origins::deserialize(d)? {
        Origins::One(s) => s.split(',').map(str::to_owned).collect(),
        Origins::List(v) => v,
    };
    Ok(raw.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
}

/// An origin as browsers send it in `Origin`: `scheme://host[:port]`, lower case, without a
/// default port or a trailing `/`. `*` stays `*`.
pub(crate) fn normalize_origin(origin: &str) -> Result<String, String> {
    let bad = || format!("'{origin}' is not an origin (scheme://host[:port], no path)");
    let trimmed = origin.trim();
    if trimmed == ANY_ORIGIN {
        return Ok(ANY_ORIGIN.to_owned());
    }
    let uri: Uri = trimmed.parse().map_err(|_| bad())?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(bad());
    };
    let path_ok = matches!(uri.path_and_query().map(|p| p.as_str()), None | Some("" | "/"));
    if !path_ok || authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(bad());
    }
    let scheme = scheme.to_ascii_lowercase();
    let host = authority.host().to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let normalized = match authority.port_u16() {
        Some(port) if Some(port) != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    };
    HeaderValue::from_str(&normalized).map_err(|_| bad())?;
    Ok(normalized)
}

/// The CORS layer for the configured origins: every origin when they include `*`, only
/// those listed otherwise, and none (CORS off) for an empty list. Origins are checked when
/// the configuration is loaded; one that is not an origin here is left out.
pub(crate) fn layer(origins: &[String]) -> Cors {
    let normalized: Vec<String> = origins.iter().filter_map(|o| normalize_origin(o).ok()).collect();
    if normalized.is_empty() {
        return Cors { layer: None };
    }
    let allow_origin = if normalized.iter().any(|o| o == ANY_ORIGIN) {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(normalized.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let layer = CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(ALLOW_METHODS)
        .allow_headers(ALLOW_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSE_HEADERS.map(HeaderName::from_static))
        .max_age(MAX_AGE);
    Cors { layer: Some(layer) }
}

/// The service's CORS (see the module documentation); a no-op when CORS is off.
#[derive(Clone, Debug)]
pub(crate) struct Cors {
    layer: Option<CorsLayer>,
}

impl<S: Clone> Layer<S> for Cors {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> CorsService<S> {
        CorsService { cors: self.layer.as_ref().map(|l| l.layer(inner.clone())), inner }
    }
}

/// [`Cors`] around a service.
#[derive(Clone, Debug)]
pub(crate) struct CorsService<S> {
    cors: Option<tower_http::cors::Cors<S>>,
    inner: S,
}

type BoxedResponse = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for CorsService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxedResponse;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // `call` sends each request to a ready clone of the service it picks.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> BoxedResponse {
        let Some(cors) = &self.cors else {
            return Box::pin(self.inner.clone().oneshot(request));
        };
        if request.method() != Method::OPTIONS {
            let response = cors.clone().oneshot(request);
            return Box::pin(async move {
                let mut response = response.await?;
                strip_unless_allowed(&mut response);
                Ok(response)
            });
        }
        if !is_preflight(&request) {
            return Box::pin(self.inner.clone().oneshot(request));
        }
        let started = Instant::now();
        let path = request.uri().path().to_owned();
        let response = cors.clone().oneshot(request);
        Box::pin(async move {
            let mut response = response.await?;
            *response.status_mut() = StatusCode::NO_CONTENT;
            let allowed = !strip_unless_allowed(&mut response);
            tracing::info!(
                target: "acs_identity::request",
                method = "OPTIONS",
                path = %path,
                status = 204,
                latency_us = started.elapsed().as_micros() as u64,
                origin_allowed = allowed,
                "CORS preflight"
            );
            Ok(response)
        })
    }
}

/// `OPTIONS` with `Origin` and `Access-Control-Request-Method`, as browsers send preflights.
fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ORIGIN)
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Removes every `Access-Control-*` header from an answer that does not allow the origin;
/// `true` when it did so.
fn strip_unless_allowed(response: &mut Response) -> bool {
    let headers = response.headers_mut();
    if headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        return false;
    }
    let cors: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in cors {
        headers.remove(name);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized_as_browsers_send_them() {
        for (given, expect) in [
            ("*", "*"),
            ("http://localhost:3000", "http://localhost:3000"),
            ("HTTP://LocalHost:3000/", "http://localhost:3000"),
            ("https://example.com:443", "https://example.com"),
            ("http://example.com:80", "http://example.com"),
            ("http://example.com:443", "http://example.com:443"),
            ("http://[::1]:5173", "http://[::1]:5173"),
            (" https://app.example ", "https://app.example"),
        ] {
            assert_eq!(normalize_origin(given).as_deref(), Ok(expect), "{given}");
        }
        for bad in [
            "",
            "localhost:3000",
            "http://localhost:3000/app",
            "http://localhost:3000?x=1",
            "http://user@localhost:3000",
            "http://",
            "/path",
            "**",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_come_as_a_list_or_a_comma_separated_string() {
        let parse = |v: serde_json::Value| deserialize_origins(v).map_err(|e| e.to_string());
        assert_eq!(
            parse(serde_json::json!("http://a:1, http://b:2")).unwrap(),
            ["http://a:1", "http://b:2"]
        );
        assert_eq!(parse(serde_json::json!(["*"])).unwrap(), ["*"]);
        assert!(parse(serde_json::json!("")).unwrap().is_empty());
        assert!(parse(serde_json::json!([])).unwrap().is_empty());
        assert!(parse(serde_json::json!([" ", ""])).unwrap().is_empty());
        assert!(parse(serde_json::json!(3)).is_err());
    }
}
