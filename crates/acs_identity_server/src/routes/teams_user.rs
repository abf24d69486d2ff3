//! `POST /teamsUser/:exchangeAccessToken`: a Teams user's Entra token for an ACS token.
//!
//! REST reference: <https://learn.microsoft.com/rest/api/communication/identity/communication-identity/exchange-teams-user-access-token>.
//! Served from 2021-03-31-preview1 on; the body is `{token}` in the previews and
//! `{token, appId, userId}` from 2022-06-01. Authenticated like the other Identity routes
//! (the resource's key or Entra token); the Teams user's token travels in the body.

use acs_identity_core::entra::{EntraError, TEAMS_AUDIENCES};
use acs_identity_core::id::ExchangedIdentity;
use acs_identity_core::token::TokenRequest;
use acs_identity_core::ApiVersion;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;

use crate::api::{AccessToken, JsonObject};
use crate::audit::AuditTarget;
use crate::error::ApiError;
use crate::operation::Operation;
use crate::routes::json;
use crate::AppState;

/// Scopes a Teams user token must carry at least one of.
const TEAMS_SCOPES: &[&str] = &["Teams.ManageCalls", "Teams.ManageChats"];

fn required(body: &JsonObject, name: &str, target: &'static str) -> Result<String, ApiError> {
    match body.string(name, target)? {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => {
            Err(ApiError::validation(format!("{target}: The {target} field is required."), target))
        }
    }
}

pub(super) async fn exchange(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = JsonObject::parse(&body, true)?;
    let expected = if version.teams_exchange_requires_app_and_user() {
        Some((required(&body, "appId", "AppId")?, required(&body, "userId", "UserId")?))
    } else {
        None
    };
    // An absent, empty, expired or otherwise invalid token is ACS's 401, not a 400.
    let token = body.string("token", "token").ok().flatten().unwrap_or_default();
    state.throttle(Operation::ExchangeTeamsUserToken)?;
    let now = state.clock().now();
    let (claims, cloud) = state.entra().verify(token.trim(), TEAMS_AUDIENCES, now).await.map_err(
        |e: EntraError| {
            tracing::info!(reason = %e, "Teams user token refused");
            ApiError::invalid_access_token()
        },
    )?;
    if !claims.scopes.iter().any(|s| TEAMS_SCOPES.contains(&s.as_str())) {
        tracing::info!("Teams user token without a Teams scope");
        return Err(ApiError::invalid_access_token());
    }
    let Some(oid) = claims.oid.clone() else { return Err(ApiError::invalid_access_token()) };
    if let Some((app_id, user_id)) = expected {
        if !claims.app_id.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(app_id.trim())) {
            return Err(ApiError::validation("AAD application is not the expected one.", "appId"));
        }
        if !oid.eq_ignore_ascii_case(user_id.trim()) {
            return Err(ApiError::validation(
                "Provided AAD token issued for unexpected user.",
                "userId",
            ));
        }
    }
    let identity = ExchangedIdentity::teams_user(cloud, &oid);
    let raw_id = identity.raw_id(state.resource());
    let issued = state
        .issuer()
        .issue(TokenRequest::exchanged(identity, now, claims.exp))
        .map_err(|e| ApiError::internal(&e))?;
    let mut response = json(StatusCode::OK, &AccessToken::new(issued.token, issued.expires_on))?;
    response.extensions_mut().insert(AuditTarget(raw_id));
    Ok(response)
}
