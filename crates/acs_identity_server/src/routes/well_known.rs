//! Unauthenticated routes: `GET /healthz` and `GET /.well-known/jwks.json`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::error::ApiError;
use crate::routes::json;
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    // Merged beside the ':' action routes, so it must opt out of the v0.7 check too.
    Router::new()
        .without_v07_checks()
        .route("/healthz", get(health))
        .route("/.well-known/jwks.json", get(jwks))
}

/// 200 when the store answers; 503 otherwise.
async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.store().ping().await?;
    json(StatusCode::OK, &json!({ "status": "ok" }))
}

/// The public keys that verify the resource's access tokens.
async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let keys: Vec<_> = state.verifier().public_keys().iter().map(|k| k.jwk()).collect();
    json(StatusCode::OK, &json!({ "keys": keys }))
}
