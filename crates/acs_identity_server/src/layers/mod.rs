//! Cross-cutting HTTP behaviour: correlation headers, the request log, and the audit log's
//! request side ([`audit`]).

pub(crate) mod activity;
pub(crate) mod audit;

use std::time::Instant;

use acs_identity_core::ApiVersion;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

use crate::error::ErrorCode;

static CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-client-request-id");
static MS_CV: HeaderName = HeaderName::from_static("ms-cv");
static PROCESSING_TIME: HeaderName = HeaderName::from_static("x-processing-time");
static API_SUPPORTED_VERSIONS: HeaderName = HeaderName::from_static("api-supported-versions");

/// A fresh correlation vector, `<22 base64 chars>.0` like ACS's (standard alphabet: `+` and `/`).
fn correlation_vector() -> String {
    let mut bytes = [0u8; 16];
    // A failing system RNG leaves zeros: a correlation vector is not a secret.
    let _ = SystemRandom::new().fill(&mut bytes);
    format!("{}.0", STANDARD_NO_PAD.encode(bytes))
}

/// Adds `MS-CV`, echoes `x-ms-client-request-id`, adds `X-Processing-Time`, and logs one
/// line per request (method, path, status, latency, client request id). Never logs
/// headers or bodies, so no key, signature or token reaches the log.
pub(crate) async fn correlate_and_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let client_request_id =
        request.headers().get(&CLIENT_REQUEST_ID).filter(|v| v.len() <= 128).cloned();
    let mut response = next.run(request).await;
    let elapsed = started.elapsed();
    let headers = response.headers_mut();
    if let Ok(cv) = HeaderValue::from_str(&correlation_vector()) {
        headers.insert(&MS_CV, cv);
    }
    if let Some(id) = &client_request_id {
        headers.insert(&CLIENT_REQUEST_ID, id.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{}ms", elapsed.as_millis())) {
        headers.insert(&PROCESSING_TIME, v);
    }
    let code = response.extensions().get::<ErrorCode>().map(|c| c.0).unwrap_or("");
    tracing::info!(
        target: "acs_identity::request",
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_us = elapsed.as_micros() as u64,
        client_request_id = client_request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(""),
        error_code = code,
        "request"
    );
    response
}

/// Sets `api-supported-versions` to `versions` on every response of a route.
pub(crate) fn supported_versions(
    versions: &[ApiVersion],
) -> impl Fn(Response) -> std::future::Ready<Response> + Clone {
    let header =
        acs_identity_core::api_version::supported_versions_header(versions.iter().copied());
    let value = HeaderValue::from_str(&header).unwrap_or(HeaderValue::from_static(""));
    move |mut response: Response| {
        response.headers_mut().insert(&API_SUPPORTED_VERSIONS, value.clone());
        std::future::ready(response)
    }
}
