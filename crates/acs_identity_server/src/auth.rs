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
use http_body_util::BodyExt;

use acs_identity_core::entra::IDENTITY_API_AUDIENCES;

use crate::error::ApiError;
use crate::transport::Transport;
use crate::AppState;

/// Who made an authenticated request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Principal {
    /// A request signed with an access key.
    AccessKey(KeyName),
    /// A request with an Entra bearer token.
    Entra {
        /// Client application id.
        app_id: Option<String>,
        /// Object id.
        object_id: Option<String>,
    },
}

/// The bearer token of an `Authorization: Bearer …` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, "authorization")?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// How much of an oversized body is read and dropped before the 413 goes out, and for how long.
///
/// Clients write their whole body before they read the response (the official SDKs do). If
/// the service answered and closed at once, the unread rest of the body would make the kernel
/// reset the connection, and the reset can reach the client before it reads the 413: it would
/// see a network error instead of ACS's answer. Reading the rest first (bounded, so a huge or
/// endless body cannot hold the connection) lets the 413 arrive.
const DRAIN_BYTES: u64 = 4 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

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
    let mut body = body;
    if declared.is_some_and(|n| n > limit as u64) {
        if declared.is_some_and(|n| n <= DRAIN_BYTES) {
            drain(&mut body, DRAIN_BYTES).await;
        }
        return Err(ApiError::payload_too_large(limit));
    }
    // Usually one chunk, returned as it came; several are joined at the end.
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut length = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::validation("The request body could not be read.", "body"));
        };
        let Ok(data) = frame.into_data() else { continue };
        length += data.len();
        if length > limit {
            drain(&mut body, DRAIN_BYTES.saturating_sub(length as u64)).await;
            return Err(ApiError::payload_too_large(limit));
        }
        chunks.push(data);
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.swap_remove(0),
        _ => Bytes::from(chunks.concat()),
    })
}

/// Reads and drops up to `budget` bytes of `body`, for at most [`DRAIN_TIME`].
async fn drain(body: &mut Body, budget: u64) {
    let reading = async {
        let mut left = budget;
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else { continue };
            match left.checked_sub(data.len() as u64) {
                Some(rest) => left = rest,
                None => return,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, reading).await;
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
    // A key regenerated (or a signing key added) by another process counts from this request.
    if let Err(e) = state.ensure_current_keys().await {
        return e.into_response();
    }
    if let Some(token) = bearer_token(&parts.headers) {
        // Bearer tokens are accepted only over TLS, as the official SDKs only send them there.
        if parts.extensions.get::<Transport>() != Some(&Transport::Https) {
            tracing::info!(reason = "bearer token over plain HTTP", "request denied");
            return ApiError::bearer_denied().into_response();
        }
        let now = state.credentials_now();
        return match state.entra().verify(token, IDENTITY_API_AUDIENCES, now).await {
            Ok((claims, _)) if state.entra().allows(&claims) => {
                let principal = Principal::Entra { app_id: claims.app_id, object_id: claims.oid };
                parts.extensions.insert(principal.clone());
                with_principal(
                    next.run(Request::from_parts(parts, Body::from(body))).await,
                    principal,
                )
            }
            Ok(_) => {
                tracing::info!(reason = "principal not in the allow-list", "request denied");
                ApiError::bearer_denied().into_response()
            }
            Err(reason) => {
                tracing::info!(reason = %reason, "request denied");
                ApiError::bearer_denied().into_response()
            }
        };
    }
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
    match hmac::verify(&signed, state.keys().verifiers(), state.credentials_now()) {
        Ok(key) => {
            parts.extensions.insert(Principal::AccessKey(key));
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            with_principal(response, Principal::AccessKey(key))
        }
        Err(reason) => {
            log_denied(reason);
            ApiError::denied().into_response()
        }
    }
}

/// Names the caller on the response too, for the audit log around this layer.
pub(crate) fn with_principal(mut response: Response, principal: Principal) -> Response {
    response.extensions_mut().insert(principal);
    response
}

fn log_denied(reason: HmacError) {
    tracing::info!(reason = %reason, "request denied");
}
