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

/// The 32 hex digits of a GUID in any of .NET's text forms (`D`, `N`, `B`, `P`), lower case.
fn guid_digits(s: &str) -> Option<String> {
    let s = s.trim();
    let inner = match (s.chars().next(), s.chars().last()) {
        (Some('{'), Some('}')) | (Some('('), Some(')')) => &s[1..s.len() - 1],
        _ => s,
    };
    let hex: String = inner.chars().filter(|c| *c != '-').collect();
    let dashed = inner.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| inner.as_bytes()[i] == b'-')
        && inner.matches('-').count() == 4;
    let plain = inner.len() == 32 && inner == hex;
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && (dashed || plain))
        .then(|| hex.to_ascii_lowercase())
}

pub(super) async fn exchange(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = JsonObject::parse(&body, true)?;
    // ACS checks the Teams user's token first: an absent, empty, expired or otherwise invalid
    // token is 401 whatever appId and userId say; only then are they required (400), then
    // GUIDs (400), then the token's own (400).
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
    if version.teams_exchange_requires_app_and_user() {
        let (app_id, user_id) =
            (required(&body, "appId", "AppId")?, required(&body, "userId", "UserId")?);
        let Some(app_id) = guid_digits(&app_id) else {
            return Err(ApiError::validation("Provided AppId has invalid format.", "appId"));
        };
        let Some(user_id) = guid_digits(&user_id) else {
            return Err(ApiError::validation("Provided UserId has invalid format.", "userId"));
        };
        if claims.app_id.as_deref().and_then(guid_digits) != Some(app_id) {
            return Err(ApiError::validation("AAD application is not the expected one.", "appId"));
        }
        if guid_digits(&oid) != Some(user_id) {
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
