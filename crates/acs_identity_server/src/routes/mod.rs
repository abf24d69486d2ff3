//! The router, built from the operation table (`crate::operation`): one module of handlers
//! per group of ACS routes.

mod access;
mod access_tokens;
mod console;
mod extensions;
mod identities;
mod openapi;
mod paging;
mod teams_user;
mod well_known;

use acs_identity_core::hmac::percent_decode;
use acs_identity_core::ApiVersion;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::{from_fn, from_fn_with_state, map_response, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::operation::{Auth, Operation};
use crate::{auth, layers, limits, AppState};

/// The whole service: the operations of [`Operation::ALL`], health, JWKS, the OpenAPI
/// documents, and ACS-style 404/405.
pub fn app(state: AppState) -> Router {
    // ACS action routes start with ':'; every router that (re)registers them must opt out
    // of axum's v0.7 path-syntax check: merging a router that has the check turns it back on.
    let skip = state.http().skip_api_version_check;
    let api = operations(Auth::Resource, skip)
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    let routes = Router::new()
        .without_v07_checks()
        .merge(well_known::router())
        .merge(openapi::router())
        .merge(console::router())
        .merge(operations(Auth::EndUser, skip))
        .merge(api)
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() });
    limits::in_flight_and_timeout(routes, state.http())
        .layer(from_fn_with_state(state.clone(), limits::header_size))
        .layer(from_fn_with_state(state.clone(), layers::audit::record))
        .layer(from_fn_with_state(state.clone(), layers::activity::record))
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

/// The handler of each operation.
fn endpoint(op: Operation) -> MethodRouter<AppState> {
    let method = MethodFilter::try_from(op.spec().method.clone())
        .unwrap_or_else(|_| unreachable!("the operation table uses standard methods only"));
    match op {
        Operation::CreateIdentity => on(method, identities::create),
        Operation::GetIdentity => on(method, identities::get_identity),
        Operation::DeleteIdentity => on(method, identities::delete),
        Operation::IssueAccessToken => on(method, identities::issue_token),
        Operation::RevokeAccessTokens => on(method, identities::revoke),
        Operation::ExchangeTeamsUserToken => on(method, teams_user::exchange),
        Operation::ValidateAccessToken => on(method, access_tokens::validate),
        Operation::ExchangeTeamsExtensionToken => on(method, access::teams_extension_exchange),
        Operation::GetTeamsExtensionAssignment => on(method, access::get_teams_assignment),
        Operation::PutTeamsExtensionAssignment => on(method, access::put_teams_assignment),
        Operation::DeleteTeamsExtensionAssignment => on(method, access::delete_teams_assignment),
        Operation::ExchangeEntraToken => on(method, access::entra_exchange),
        Operation::ListEntraAssignments => on(method, access::list_entra_assignments),
        Operation::PatchEntraAssignments => on(method, access::patch_entra_assignments),
        Operation::GetEntraAssignment => on(method, access::get_entra_assignment),
        Operation::PutEntraAssignment => on(method, access::put_entra_assignment),
        Operation::DeleteEntraAssignment => on(method, access::delete_entra_assignment),
        Operation::ListIdentities => on(method, extensions::list_identities),
        Operation::GetResource => on(method, extensions::resource),
        Operation::GetActivity => on(method, extensions::activity),
    }
}

/// The routes of every operation authenticated by `auth`: one per path, each method's
/// handler behind the `api-version` check of its operation, and every answer on a
/// versioned path (405 included) with `api-supported-versions`.
/// With `skip_version_check`, an unknown `api-version` is served as the newest the operation has.
fn operations(auth: Auth, skip_version_check: bool) -> Router<AppState> {
    let mut paths: Vec<&'static str> = Vec::new();
    for op in Operation::ALL.into_iter().filter(|op| op.spec().auth == auth) {
        if !paths.contains(&op.spec().path) {
            paths.push(op.spec().path);
        }
    }
    let mut router = Router::new().without_v07_checks();
    for path in paths {
        let ops: Vec<Operation> =
            Operation::ALL.into_iter().filter(|op| op.spec().path == path).collect();
        let mut methods = MethodRouter::new();
        for &op in &ops {
            let handler = endpoint(op);
            methods = methods.merge(match op.spec().versions {
                Some(_) => handler.route_layer(from_fn_with_state(
                    VersionCheck { op, skip_unknown: skip_version_check },
                    check_api_version,
                )),
                None => handler,
            });
        }
        let served: Vec<ApiVersion> = ApiVersion::ALL
            .into_iter()
            .filter(|&v| ops.iter().any(|op| op.spec().versions.is_some_and(|gate| gate(v))))
            .collect();
        if !served.is_empty() {
            methods = methods.layer(map_response(layers::supported_versions(&served)));
        }
        router = router.route(path, methods);
    }
    router
}

/// What the `api-version` check of one operation's route knows.
#[derive(Clone, Copy, Debug)]
struct VersionCheck {
    op: Operation,
    /// Serve a version this service does not know as the newest one of `op`.
    skip_unknown: bool,
}

/// Route layer: answers ACS's 400 unless the request's `api-version` serves `op`, and hands
/// the version to the handler as an `Extension<ApiVersion>`.
async fn check_api_version(
    State(check): State<VersionCheck>,
    mut request: Request,
    next: Next,
) -> Response {
    let served = check.op.spec().versions.unwrap_or(ApiVersion::any);
    let checked = match api_version(request.uri(), served) {
        Err(e) if check.skip_unknown && e.code() == "UnsupportedApiVersion" => {
            newest_unless_known(request.uri(), served).ok_or(e)
        }
        other => other,
    };
    match checked {
        Ok(version) => {
            request.extensions_mut().insert(version);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
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

/// With the check skipped: the newest version `served` accepts, when the request names a
/// version this service does not know at all (a known version the operation does not have
/// is still refused).
fn newest_unless_known(uri: &Uri, served: fn(ApiVersion) -> bool) -> Option<ApiVersion> {
    if api_version(uri, ApiVersion::any).is_ok() {
        return None;
    }
    ApiVersion::ALL.into_iter().rev().find(|&v| served(v))
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
