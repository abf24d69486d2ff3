//! `POST /accessTokens/:validate`: token validation for chat and calling servers.
//!
//! Not an ACS route (ACS publishes no way to check its tokens); authenticated with the
//! access key like every other route. `api-version` is optional.

use acs_identity_core::time_format::acs_datetime;
use acs_identity_core::token::{InvalidReason, Subject};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::api::{JsonObject, ValidIdentity, ValidateResult};
use crate::cache::Observed;
use crate::error::ApiError;
use crate::routes::json;
use crate::AppState;

pub(super) async fn validate(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = JsonObject::parse(&body, true)?;
    let Some(token) = body.string("token", "token")? else {
        return Err(ApiError::validation("token: The token field is required.", "token"));
    };
    let result = match check(&state, &token).await? {
        Ok(valid) => valid,
        Err(reason) => ValidateResult::Invalid { valid: false, reason: reason.as_str() },
    };
    json(StatusCode::OK, &result)
}

async fn check(
    state: &AppState,
    token: &str,
) -> Result<Result<ValidateResult, InvalidReason>, ApiError> {
    let now = state.clock().now();
    let verified = match state.caches().verified(token) {
        Some(v) if now.unix_timestamp() < v.claims.exp => v,
        Some(_) => return Ok(Err(InvalidReason::Expired)),
        None => match state.verifier().verify(token, state.resource(), now) {
            Ok(v) => {
                state.caches().remember_verified(token, &v);
                v
            }
            Err(reason) => return Ok(Err(reason)),
        },
    };
    if verified.key_revoked(|stamp| state.keys().is_current(stamp)) {
        return Ok(Err(InvalidReason::Revoked));
    }
    if let Subject::User(user) = verified.subject {
        let identity = match state.caches().identity(user) {
            Some(cached) => Some(cached),
            None => {
                let ticket = state.ticket(user);
                state.store().get_identity(user).await?.map(|record| {
                    state.observe(ticket, &record, Observed::Read);
                    record.state()
                })
            }
        };
        if let Err(reason) = verified.standing(identity) {
            return Ok(Err(reason));
        }
    }
    let expires_on = OffsetDateTime::from_unix_timestamp(verified.claims.exp)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Ok(ValidateResult::Valid {
        valid: true,
        identity: ValidIdentity { id: verified.subject.raw_id(state.resource()) },
        scopes: verified.claims.acs_scope.split(',').map(str::to_owned).collect(),
        expires_on: acs_datetime(expires_on),
    }))
}
