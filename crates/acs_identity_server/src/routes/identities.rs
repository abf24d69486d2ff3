//! `POST /identities`, `GET|DELETE /identities/{id}`,
//! `POST /identities/{id}/:issueAccessToken`, `POST /identities/{id}/:revokeAccessTokens`.
//!
//! REST reference: <https://learn.microsoft.com/rest/api/communication/identity/communication-identity>.
//! `GET` and `customId` exist only in 2025-03-02-preview; the operation table
//! (`crate::operation`) routes these handlers and checks the api-version first.

use acs_identity_core::id::{parse_identity, ParsedIdentity, UserId};
use acs_identity_core::store::{IdentityRecord, NewIdentity};
use acs_identity_core::time_format::acs_datetime;
use acs_identity_core::token::{IssuedToken, TokenRequest};
use acs_identity_core::{ApiVersion, Scopes, TokenLifetime};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::api::{
    AccessToken, Identity, IdentityAccessTokenResult, JsonObject, MAX_CUSTOM_ID_CHARS,
};
use crate::audit::{AuditOperation, AuditTarget};
use crate::auth::Principal;
use crate::cache::{Observed, Ticket};
use crate::error::ApiError;
use crate::operation::Operation;
use crate::routes::json;
use crate::throttle::ThrottleClass;
use crate::AppState;

/// The user named by the path, or ACS's 401 for anything that is not ours.
fn user_from_path(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
) -> Result<UserId, ApiError> {
    let Ok(Path(raw)) = path else {
        return Err(ApiError::identity_not_owned());
    };
    match parse_identity(&raw, state.resource()) {
        ParsedIdentity::Ours(user) => Ok(user),
        ParsedIdentity::NotOwned => Err(ApiError::identity_not_owned()),
    }
}

/// The user named by the path (as [`user_from_path`]), after counting the request against
/// `operation`'s throttle.
fn throttled_user(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    operation: Operation,
) -> Result<UserId, ApiError> {
    let user = user_from_path(state, path)?;
    state.throttle(operation)?;
    Ok(user)
}

/// Live identity, or the error ACS-style callers get: 401 unknown, 404 deleted. The
/// record (from a store call begun after `ticket`) goes to the caches.
fn live(
    state: &AppState,
    ticket: Ticket,
    record: Option<IdentityRecord>,
    how: Observed,
) -> Result<IdentityRecord, ApiError> {
    if let Some(r) = &record {
        state.observe(ticket, r, how);
    }
    match record {
        None => Err(ApiError::identity_not_owned()),
        Some(r) if !r.is_live() => Err(ApiError::identity_deleted()),
        Some(r) => Ok(r),
    }
}

fn lifetime(body: &JsonObject, version: ApiVersion) -> Result<TokenLifetime, ApiError> {
    if !version.has_custom_expiry() {
        return Ok(TokenLifetime::DEFAULT);
    }
    Ok(TokenLifetime::from_request(body.int32("expiresInMinutes", "ExpiresInMinutes")?)?)
}

fn custom_id(body: &JsonObject, version: ApiVersion) -> Result<Option<String>, ApiError> {
    if !version.has_custom_id() {
        return Ok(None);
    }
    let Some(id) = body.string("customId", "customId")? else { return Ok(None) };
    if id.is_empty() {
        return Err(ApiError::validation(
            "customId: The field customId must not be empty.",
            "customId",
        ));
    }
    if id.chars().count() > MAX_CUSTOM_ID_CHARS {
        return Err(ApiError::validation(
            format!("customId: The field customId must be at most {MAX_CUSTOM_ID_CHARS} characters long."),
            "customId",
        ));
    }
    Ok(Some(id))
}

fn identity_dto(state: &AppState, record: &IdentityRecord, version: ApiVersion) -> Identity {
    let detailed = version.has_custom_id();
    Identity {
        id: record.user.raw_id(state.resource()),
        custom_id: record.custom_id.clone().filter(|_| detailed),
        last_token_issued_at: record.last_token_issued_at.filter(|_| detailed).map(acs_datetime),
    }
}

fn issue(
    state: &AppState,
    principal: Option<&Principal>,
    user: UserId,
    generation: u64,
    scopes: &Scopes,
    lifetime: TokenLifetime,
    now: OffsetDateTime,
) -> Result<AccessToken, ApiError> {
    // Tokens remember the access key that asked for them: regenerating it revokes them.
    let access_key = match principal {
        Some(Principal::AccessKey(name)) => state.keys().stamp(*name),
        _ => None,
    };
    let request = TokenRequest::user(user, generation, scopes, lifetime, now);
    let IssuedToken { token, expires_on } = state
        .issuer()
        .issue(request.with_access_key(access_key))
        .map_err(|e| ApiError::internal(&e))?;
    Ok(AccessToken::new(token, expires_on))
}

/// `POST /identities`: 201 with the identity, and a token when scopes were asked for.
pub(super) async fn create(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    principal: Option<Extension<Principal>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = JsonObject::parse(&body, false)?;
    let scopes = Scopes::from_create_request(
        body.string_list("createTokenWithScopes", "createTokenWithScopes")?.as_deref(),
        version,
    )?;
    let lifetime = lifetime(&body, version)?;
    let custom_id = custom_id(&body, version)?;
    if scopes.is_some() {
        state.throttle_class(ThrottleClass::CreateUserAndToken)?;
    } else {
        state.throttle(Operation::CreateIdentity)?;
    }
    let now = state.clock().now();
    let user = UserId::generate();
    let ticket = state.ticket(user);
    let created = state
        .store()
        .create_identity(NewIdentity {
            user,
            custom_id,
            created_at: now,
            token_issued_at: scopes.as_ref().map(|_| now),
        })
        .await?;
    // A create that returned the identity of an existing custom id is a read of it.
    let how = if created.created { Observed::Write } else { Observed::Read };
    let ticket = if created.created { ticket } else { Ticket::MERGE_ONLY };
    state.observe(ticket, &created.record, how);
    let record = &created.record;
    let access_token = scopes
        .map(|s| {
            issue(&state, principal.as_deref(), record.user, record.generation, &s, lifetime, now)
        })
        .transpose()?;
    let with_token = access_token.is_some();
    let identity = identity_dto(&state, &created.record, version);
    let target = AuditTarget(identity.id.clone());
    let mut response =
        json(StatusCode::CREATED, &IdentityAccessTokenResult { identity, access_token })?;
    response.extensions_mut().insert(target);
    if with_token {
        response.extensions_mut().insert(AuditOperation("identity.create_with_token"));
    }
    Ok(response)
}

/// `GET /identities/{id}` (2025-03-02-preview).
pub(super) async fn get_identity(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let user = user_from_path(&state, path)?;
    let ticket = state.ticket(user);
    let mut record = live(&state, ticket, state.store().get_identity(user).await?, Observed::Read)?;
    // A token time not yet written behind is the newer one.
    record.last_token_issued_at = state.last_token_issued_at(&record);
    json(StatusCode::OK, &identity_dto(&state, &record, version))
}

/// `POST /identities/{id}/:issueAccessToken`: 200 `{token, expiresOn}`.
///
/// Writes nothing before answering: the identity's state (generation, deleted) comes from
/// the identity cache (single node) or one primary-key read, and `lastTokenIssuedAt` is
/// written behind (`crate::token_marks`).
pub(super) async fn issue_token(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    principal: Option<Extension<Principal>>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = JsonObject::parse(&body, false)?;
    let scopes = Scopes::from_request(body.string_list("scopes", "Scopes")?.as_deref(), version)?;
    let lifetime = lifetime(&body, version)?;
    let user = throttled_user(&state, path, Operation::IssueAccessToken)?;
    let identity = match state.caches().identity(user) {
        Some(cached) => cached,
        None => {
            let ticket = state.ticket(user);
            live(&state, ticket, state.store().get_identity(user).await?, Observed::Read)?.state()
        }
    };
    if identity.deleted {
        return Err(ApiError::identity_deleted());
    }
    let now = state.clock().now();
    let token =
        issue(&state, principal.as_deref(), user, identity.generation, &scopes, lifetime, now)?;
    state.token_marks().record(user, now);
    json(StatusCode::OK, &token)
}

/// `POST /identities/{id}/:revokeAccessTokens`: 204; every earlier token stops validating.
pub(super) async fn revoke(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let user = throttled_user(&state, path, Operation::RevokeAccessTokens)?;
    let ticket = state.ticket(user);
    live(&state, ticket, state.store().revoke_tokens(user).await?, Observed::Write)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /identities/{id}`: 204, also when it was already deleted.
pub(super) async fn delete(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let user = throttled_user(&state, path, Operation::DeleteIdentity)?;
    let now = state.clock().now();
    let ticket = state.ticket(user);
    match state.store().delete_identity(user, now).await? {
        None => Err(ApiError::identity_not_owned()),
        Some(record) => {
            state.observe(ticket, &record, Observed::Write);
            Ok(StatusCode::NO_CONTENT)
        }
    }
}
