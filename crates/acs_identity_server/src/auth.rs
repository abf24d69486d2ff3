//! Request authentication: HMAC-SHA256 with the resource's access keys.
//!
//! The middleware buffers the body (up to the configured limit, else 413), verifies
//! the signature over the raw bytes, and hands the handler the same bytes.

use acs_identity_core::hmac::{self, HmacError, KeyName, SignedRequest};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::ApiError;
use crate::AppState;

/// Who made an authenticated request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Principal {
    /// A request signed with an access key.
    AccessKey(KeyName),
}

/// Reads the whole body, answering 413 past `limit`.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(ApiError::payload_too_large(limit)),
        Err(_) => Err(ApiError::validation("The request body could not be read.", "body")),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Middleware: authenticate, then call the handler with the buffered body.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let body = match read_body(body, &parts.headers, state.http().max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut hosts: Vec<&str> = Vec::with_capacity(2 + state.http().public_hosts.len());
    if let Some(h) = header_str(&parts.headers, "host") {
        hosts.push(h);
    }
    if let Some(a) = parts.uri.authority() {
        hosts.push(a.as_str());
    }
    hosts.extend(state.http().public_hosts.iter().map(String::as_str));
    let method = parts.method.as_str().to_owned();
    let signed = SignedRequest {
        method: &method,
        path_and_query,
        hosts: &hosts,
        authorization: header_str(&parts.headers, "authorization"),
        x_ms_date: header_str(&parts.headers, "x-ms-date"),
        date: header_str(&parts.headers, "date"),
        content_hash: header_str(&parts.headers, "x-ms-content-sha256"),
        body: &body,
    };
    match hmac::verify(&signed, state.keys().verifiers(), state.clock().now()) {
        Ok(key) => {
            parts.extensions.insert(Principal::AccessKey(key));
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Err(reason) => {
            log_denied(reason);
            ApiError::denied().into_response()
        }
    }
}

fn log_denied(reason: HmacError) {
    tracing::info!(reason = %reason, "request denied");
}
