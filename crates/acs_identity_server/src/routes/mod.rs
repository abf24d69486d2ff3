//! The router: one module per group of ACS routes.

mod access;
mod access_tokens;
mod identities;
mod openapi;
mod teams_user;
mod well_known;

use acs_identity_core::hmac::percent_decode;
use acs_identity_core::ApiVersion;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::{audit, auth, layers, limits, AppState};

/// The whole service: authenticated ACS routes, health, JWKS, and ACS-style 404/405.
pub fn app(state: AppState) -> Router {
    // ACS action routes start with ':'; every router that (re)registers them must opt out
    // of axum's v0.7 path-syntax check: merging a router that has the check turns it back on.
    let api = Router::new()
        .without_v07_checks()
        .merge(identities::router())
        .merge(access_tokens::router())
        .merge(teams_user::router())
        .merge(access::router())
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    let routes = Router::new()
        .without_v07_checks()
        .merge(well_known::router())
        .merge(openapi::router())
        .merge(access::exchange_router())
        .merge(api)
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() });
    limits::in_flight_and_timeout(routes, state.http())
        .layer(from_fn_with_state(state.clone(), limits::header_size))
        .layer(from_fn_with_state(state.clone(), audit::record))
        .layer(from_fn(layers::correlate_and_log))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "An internal error occurred.",
            )
            .into_response()
        }))
        .with_state(state.clone())
        .layer(crate::cors::layer(&state.http().cors_allowed_origins))
}

/// Reads and checks `api-version` against what the route serves.
pub(crate) fn api_version(
    uri: &Uri,
    served: fn(ApiVersion) -> bool,
) -> Result<ApiVersion, ApiError> {
    let raw = uri.query().and_then(|q| {
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            k.eq_ignore_ascii_case("api-version").then_some(v)
        })
    });
    let Some(raw) = raw else { return Err(ApiError::api_version_missing()) };
    let value = percent_decode(&raw.replace('+', " ")).unwrap_or_else(|| raw.replace('+', " "));
    if value.is_empty() {
        return Err(ApiError::api_version_missing());
    }
    match value.parse::<ApiVersion>() {
        Ok(v) if served(v) => Ok(v),
        _ => Err(ApiError::api_version_unsupported(uri.path(), &value)),
    }
}

/// A JSON success response, with ACS's content type.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(&e))?;
    let mut res = (status, body).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn api_version_is_required_and_checked() {
        let all = |_| true;
        assert_eq!(
            api_version(&uri("/identities?api-version=2023-10-01"), all).unwrap(),
            ApiVersion::V2023_10_01
        );
        assert_eq!(
            api_version(&uri("/identities?x=1&API-VERSION=2021-03-07"), all).unwrap(),
            ApiVersion::V2021_03_07
        );
        assert_eq!(
            api_version(&uri("/identities"), all).unwrap_err().code(),
            "ApiVersionUnspecified"
        );
        assert_eq!(
            api_version(&uri("/identities?api-version="), all).unwrap_err().code(),
            "ApiVersionUnspecified"
        );
        assert_eq!(
            api_version(&uri("/identities?api-version=2020-07-20-preview2"), all)
                .unwrap_err()
                .code(),
            "UnsupportedApiVersion"
        );
        let preview_only = |v| v == ApiVersion::V2025_03_02Preview;
        assert!(api_version(&uri("/identities/x?api-version=2023-10-01"), preview_only).is_err());
    }
}
