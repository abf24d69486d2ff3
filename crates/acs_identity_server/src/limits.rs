//! Request limits: head size (431), time to respond (408), requests in flight (503).
//!
//! These are axum layers, so their answers carry ACS's error envelope and pass through
//! the request log. What the HTTP parser refuses before any layer runs (heads over twice
//! the limit, more than 100 header fields, a head not complete within the idle timeout)
//! is configured in [`crate::serve`].

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::error::Overloaded;
use tower::timeout::error::Elapsed;
use tower::{BoxError, ServiceBuilder};

use crate::error::ApiError;
use crate::state::HttpSettings;
use crate::AppState;

/// Bytes a request head takes on the wire in HTTP/1.1: the request line and each field as
/// `name: value\r\n`. The same measure is applied to HTTP/2 requests.
pub(crate) fn head_bytes(request: &Request) -> usize {
    let line = request.method().as_str().len()
        + request.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + " HTTP/1.1\r\n ".len();
    request
        .headers()
        .iter()
        .fold(line, |n, (name, value)| n.saturating_add(name.as_str().len() + value.len() + 4))
}

/// Middleware: 431 with ACS's envelope for a head over `max_header_bytes`.
pub(crate) async fn header_size(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.http().max_header_bytes;
    if head_bytes(&request) > limit {
        tracing::info!(limit, "request head too large");
        return ApiError::header_fields_too_large(limit).into_response();
    }
    next.run(request).await
}

/// Adds the 408 and 503 layers to every route of `router`: at most
/// `max_in_flight_requests` requests at once (the next one is answered 503 with
/// `Retry-After` at once rather than queued), each answered within `request_timeout` of its
/// head (reading the body included) or with 408. One limit is shared by all routes.
pub(crate) fn in_flight_and_timeout(
    router: Router<AppState>,
    http: &HttpSettings,
) -> Router<AppState> {
    let timeout = http.request_timeout;
    router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |e: BoxError| answer(e, timeout)))
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::new(http.max_in_flight_requests))
            .timeout(timeout),
    )
}

async fn answer(error: BoxError, timeout: Duration) -> ApiError {
    if error.is::<Overloaded>() {
        tracing::warn!("too many requests in flight: answered 503");
        ApiError::overloaded()
    } else if error.is::<Elapsed>() {
        tracing::info!(timeout_s = timeout.as_secs(), "request timed out");
        ApiError::request_timeout(timeout)
    } else {
        ApiError::internal(error.as_ref())
    }
}
