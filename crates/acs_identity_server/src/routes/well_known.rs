//! Unauthenticated routes: `GET /healthz` (liveness), `GET /readyz` (readiness),
//! `GET /metrics` (Prometheus) and `GET /.well-known/jwks.json`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::error::{ApiError, ErrorChain};
use crate::routes::json;
use crate::telemetry::Metrics;
use crate::AppState;

/// How long `/readyz` waits for the store's answer.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// The content type of Prometheus' text exposition format.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) fn router(metrics_on_api: bool) -> Router<AppState> {
    // Merged beside the ':' action routes, so it must opt out of the v0.7 check too.
    let router = Router::new()
        .without_v07_checks()
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/.well-known/jwks.json", get(jwks));
    if metrics_on_api {
        router.route("/metrics", get(metrics))
    } else {
        router
    }
}

/// The router of a `metrics_listen` address: `/metrics` and ACS's 404 for anything else.
pub(crate) fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(move || std::future::ready(scrape(&metrics))))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
}

/// Liveness: 200 while the process serves requests at all. It reads nothing, so a store
/// outage never makes an orchestrator restart a node that would recover by itself.
async fn health() -> Result<Response, ApiError> {
    json(StatusCode::OK, &json!({ "status": "ok" }))
}

/// Readiness: 200 when the keys are loaded and current (as authentication checks them) and
/// the store answers a trivial query within [`READY_TIMEOUT`]; 503 with ACS's envelope
/// otherwise.
async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.keys().verifiers().is_empty() || state.verifier().public_keys().is_empty() {
        return Err(ApiError::not_ready("no keys are loaded"));
    }
    // What authentication checks before every request: the keys held are the store's.
    if state.ensure_current_keys().await.is_err() {
        return Err(ApiError::not_ready("the keys cannot be confirmed current"));
    }
    match tokio::time::timeout(READY_TIMEOUT, state.store().ping()).await {
        Ok(Ok(())) => json(StatusCode::OK, &json!({ "status": "ready" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %ErrorChain(&e), "not ready: the store failed");
            Err(ApiError::not_ready("the store cannot be reached"))
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = READY_TIMEOUT.as_millis() as u64,
                "not ready: the store did not answer"
            );
            Err(ApiError::not_ready(&format!(
                "the store did not answer within {} ms",
                READY_TIMEOUT.as_millis()
            )))
        }
    }
}

/// `GET /metrics` on the API listeners.
async fn metrics(State(state): State<AppState>) -> Response {
    scrape(state.metrics())
}

/// The Prometheus exposition; 404 when metrics are off.
fn scrape(metrics: &Metrics) -> Response {
    match metrics.render() {
        Some(text) => {
            let mut res = (StatusCode::OK, text).into_response();
            let headers = res.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(EXPOSITION));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        None => ApiError::not_found().into_response(),
    }
}

/// The public keys that verify the resource's access tokens.
async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let keys: Vec<_> = state.verifier().public_keys().iter().map(|k| k.jwk()).collect();
    json(StatusCode::OK, &json!({ "keys": keys }))
}
