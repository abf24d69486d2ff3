//! Teams Phone extensibility and Entra user access (`/access/...`).
//!
//! - `POST /access/teamsExtension/:exchangeAccessToken` and
//!   `GET|PUT|DELETE /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`:
//!   2025-03-02-preview, 2025-06-30, 2026-07-22, 2026-09-23.
//! - `POST /access/entra/:exchangeAccessToken`, `GET|PATCH /access/entra/assignments` and
//!   `GET|PUT|DELETE /access/entra/assignments/{objectId}`: 2025-03-02-preview.
//!
//! The exchanges are authenticated by the end user's own Entra token (`Authorization:
//! Bearer`), over HTTPS only; the assignment routes like every other management route.

use acs_identity_core::entra::{EntraClaims, ENTRA_EXCHANGE_AUDIENCES, TEAMS_AUDIENCES};
use acs_identity_core::id::ExchangedIdentity;
use acs_identity_core::store::{EntraAssignment, TeamsExtensionAssignment};
use acs_identity_core::token::TokenRequest;
use acs_identity_core::ApiVersion;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::api::{AccessToken, Identity, IdentityAccessTokenResult, JsonObject};
use crate::audit::AuditTarget;
use crate::auth::{bearer_token, read_body, with_principal, Principal};
use crate::error::ApiError;
use crate::operation::Operation;
use crate::routes::json;
use crate::routes::paging::{link_origin, next_link, page_request, Page};
use crate::transport::Transport;
use crate::AppState;

/// Scope of Teams Phone extensibility tokens.
const TEAMS_EXTENSION_SCOPE: &str = "TeamsExtension.ManageCalls";
/// Most changes one `PATCH /access/entra/assignments` may carry.
const MAX_PATCH: usize = 1000;

/// A lower-case GUID, or a 400 naming `target`.
fn guid(value: &str, target: &str) -> Result<String, ApiError> {
    match uuid::Uuid::parse_str(value) {
        Ok(u) if value.len() == 36 => Ok(u.as_hyphenated().to_string()),
        _ => Err(ApiError::validation(
            format!("{target}: '{}' is not a valid GUID.", short(value)),
            target,
        )),
    }
}

fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// Verifies the caller's bearer token for `audiences`; every failure is 401 InvalidAccessToken.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    transport: Option<Extension<Transport>>,
    audiences: &[&str],
) -> Result<EntraClaims, ApiError> {
    if transport.map(|t| t.0) != Some(Transport::Https) {
        return Err(ApiError::invalid_access_token());
    }
    let token = bearer_token(headers).ok_or_else(ApiError::invalid_access_token)?;
    let (claims, _) =
        state.entra().verify(token, audiences, state.clock().now()).await.map_err(|e| {
            tracing::info!(reason = %e, "exchange token refused");
            ApiError::invalid_access_token()
        })?;
    if claims.tid.is_none() || claims.oid.is_none() || claims.app_id.is_none() {
        return Err(ApiError::invalid_access_token());
    }
    Ok(claims)
}

/// The answer of an exchange: `identity` and its token, expiring with the caller's token.
fn exchanged(
    state: &AppState,
    identity: ExchangedIdentity,
    claims: &EntraClaims,
) -> Result<Response, ApiError> {
    let id = identity.raw_id(state.resource());
    let issued = state
        .issuer()
        .issue(TokenRequest::exchanged(identity, state.clock().now(), claims.exp))
        .map_err(|e| ApiError::internal(&e))?;
    let mut response = json(
        StatusCode::OK,
        &IdentityAccessTokenResult {
            identity: Identity { id: id.clone(), custom_id: None, last_token_issued_at: None },
            access_token: Some(AccessToken::new(issued.token, issued.expires_on)),
        },
    )?;
    response.extensions_mut().insert(AuditTarget(id));
    Ok(response)
}

/// Names the verified caller on the response, whatever it is, for the audit log.
fn as_caller(result: Result<Response, ApiError>, claims: &EntraClaims) -> Response {
    let principal =
        Principal::Entra { app_id: claims.app_id.clone(), object_id: claims.oid.clone() };
    with_principal(result.into_response(), principal)
}

/// What both exchanges receive.
struct Exchange<'a> {
    headers: &'a HeaderMap,
    transport: Option<Extension<Transport>>,
    body: Body,
}

impl Exchange<'_> {
    /// Checks the (empty) body, counts the request as `op`, and verifies the caller's Entra
    /// token for `audiences`.
    async fn caller(
        self,
        state: &AppState,
        op: Operation,
        audiences: &[&str],
    ) -> Result<EntraClaims, ApiError> {
        let body = read_body(self.body, self.headers, state.http().max_body_bytes).await?;
        JsonObject::parse(&body, false)?;
        state.throttle(op)?;
        caller(state, self.headers, self.transport, audiences).await
    }
}

fn lower(s: &Option<String>) -> String {
    s.as_deref().unwrap_or_default().to_ascii_lowercase()
}

/// `POST /access/teamsExtension/:exchangeAccessToken`: an assigned Teams user's or
/// resource account's Entra token for an ACS token of `8:acs:<resource>_<tenant>_<user>`.
pub(super) async fn teams_extension_exchange(
    State(state): State<AppState>,
    headers: HeaderMap,
    transport: Option<Extension<Transport>>,
    body: Body,
) -> Result<Response, ApiError> {
    let request = Exchange { headers: &headers, transport, body };
    let claims =
        request.caller(&state, Operation::ExchangeTeamsExtensionToken, TEAMS_AUDIENCES).await?;
    Ok(as_caller(teams_extension_token(&state, &claims).await, &claims))
}

async fn teams_extension_token(
    state: &AppState,
    claims: &EntraClaims,
) -> Result<Response, ApiError> {
    if !claims.scopes.contains(TEAMS_EXTENSION_SCOPE) {
        return Err(ApiError::invalid_access_token());
    }
    let (tid, oid, app) = (lower(&claims.tid), lower(&claims.oid), lower(&claims.app_id));
    let assignment = state.store().get_teams_extension_assignment(&tid, &oid).await?;
    let allowed = assignment.is_some_and(|a| {
        a.client_ids.as_ref().is_none_or(|ids| ids.iter().any(|c| c.eq_ignore_ascii_case(&app)))
    });
    if !allowed {
        return Err(ApiError::not_assigned());
    }
    exchanged(state, ExchangedIdentity::teams_extension_user(&tid, &oid), claims)
}

/// `POST /access/entra/:exchangeAccessToken`: an assigned Entra user's token for an ACS
/// token of `8:acs:<resource>_wf_<tenant>_<user>`.
pub(super) async fn entra_exchange(
    State(state): State<AppState>,
    headers: HeaderMap,
    transport: Option<Extension<Transport>>,
    body: Body,
) -> Result<Response, ApiError> {
    let request = Exchange { headers: &headers, transport, body };
    let claims =
        request.caller(&state, Operation::ExchangeEntraToken, ENTRA_EXCHANGE_AUDIENCES).await?;
    Ok(as_caller(entra_token(&state, &claims).await, &claims))
}

async fn entra_token(state: &AppState, claims: &EntraClaims) -> Result<Response, ApiError> {
    let (tid, oid, app) = (lower(&claims.tid), lower(&claims.oid), lower(&claims.app_id));
    let mut candidates = vec![oid.clone(), tid.clone()];
    candidates.extend(claims.groups.iter().map(|g| g.to_ascii_lowercase()));
    let found = state.store().find_entra_assignments(&tid, &candidates).await?;
    let allowed = found.iter().any(|a| {
        let principal = match a.principal_type.as_str() {
            "user" => a.object_id == oid,
            "tenant" => a.object_id == tid,
            "group" => claims.groups.iter().any(|g| g.eq_ignore_ascii_case(&a.object_id)),
            _ => false,
        };
        principal && a.client_ids.iter().any(|c| c.eq_ignore_ascii_case(&app))
    });
    if !allowed {
        return Err(ApiError::not_assigned());
    }
    exchanged(state, ExchangedIdentity::entra_user(&tid, &oid), claims)
}

#[derive(Serialize)]
struct TeamsAssignmentDto {
    #[serde(rename = "objectId")]
    object_id: String,
    #[serde(rename = "tenantId")]
    tenant_id: String,
    #[serde(rename = "principalType")]
    principal_type: String,
    #[serde(rename = "clientIds", skip_serializing_if = "Option::is_none")]
    client_ids: Option<Vec<String>>,
}

impl From<TeamsExtensionAssignment> for TeamsAssignmentDto {
    fn from(a: TeamsExtensionAssignment) -> Self {
        TeamsAssignmentDto {
            object_id: a.object_id,
            tenant_id: a.tenant_id,
            principal_type: a.principal_type,
            client_ids: a.client_ids,
        }
    }
}

#[derive(Serialize)]
struct EntraAssignmentDto {
    #[serde(rename = "objectId")]
    object_id: String,
    #[serde(rename = "tenantId")]
    tenant_id: String,
    #[serde(rename = "principalType")]
    principal_type: String,
    #[serde(rename = "clientIds")]
    client_ids: Vec<String>,
}

impl From<EntraAssignment> for EntraAssignmentDto {
    fn from(a: EntraAssignment) -> Self {
        EntraAssignmentDto {
            object_id: a.object_id,
            tenant_id: a.tenant_id,
            principal_type: a.principal_type,
            client_ids: a.client_ids,
        }
    }
}

fn path_pair(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, String), ApiError> {
    let Path((t, o)) = path.map_err(|_| ApiError::validation("The path is not valid.", "path"))?;
    Ok((guid(&t, "tenantId")?, guid(&o, "objectId")?))
}

fn path_one(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(o) = path.map_err(|_| ApiError::validation("The path is not valid.", "path"))?;
    guid(&o, "objectId")
}

fn client_ids(body: &JsonObject, required: bool) -> Result<Option<Vec<String>>, ApiError> {
    let ids = body.string_list("clientIds", "clientIds")?;
    if required && ids.is_none() {
        return Err(ApiError::validation(
            "clientIds: The clientIds field is required.",
            "clientIds",
        ));
    }
    ids.map(|ids| ids.iter().map(|c| guid(c, "clientIds")).collect::<Result<Vec<_>, _>>())
        .transpose()
}

fn principal_type(body: &JsonObject, allowed: &[&str]) -> Result<String, ApiError> {
    match body.string("principalType", "principalType")? {
        Some(p) if allowed.contains(&p.as_str()) => Ok(p),
        Some(p) => Err(ApiError::validation(
            format!("principalType: '{}' is not one of {}.", short(&p), allowed.join(", ")),
            "principalType",
        )),
        None => Err(ApiError::validation(
            "principalType: The principalType field is required.",
            "principalType",
        )),
    }
}

pub(super) async fn get_teams_assignment(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (tenant, object) = path_pair(path)?;
    let a = state
        .store()
        .get_teams_extension_assignment(&tenant, &object)
        .await?
        .ok_or_else(ApiError::assignment_not_found)?;
    json(StatusCode::OK, &TeamsAssignmentDto::from(a))
}

pub(super) async fn put_teams_assignment(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (tenant_id, object_id) = path_pair(path)?;
    let body = JsonObject::parse(&body, true)?;
    let a = TeamsExtensionAssignment {
        tenant_id,
        object_id,
        principal_type: principal_type(&body, &["user", "resourceAccount"])?,
        client_ids: client_ids(&body, false)?,
    };
    let created = state.store().put_teams_extension_assignment(a.clone()).await?;
    json(if created { StatusCode::CREATED } else { StatusCode::OK }, &TeamsAssignmentDto::from(a))
}

pub(super) async fn delete_teams_assignment(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let (tenant, object) = path_pair(path)?;
    state.store().delete_teams_extension_assignment(&tenant, &object).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn entra_request(object_id: String, body: &JsonObject) -> Result<EntraAssignment, ApiError> {
    let tenant = body.string("tenantId", "tenantId")?.ok_or_else(|| {
        ApiError::validation("tenantId: The tenantId field is required.", "tenantId")
    })?;
    Ok(EntraAssignment {
        object_id,
        tenant_id: guid(&tenant, "tenantId")?,
        principal_type: principal_type(body, &["user", "group", "tenant"])?,
        client_ids: client_ids(body, true)?.unwrap_or_default(),
    })
}

pub(super) async fn get_entra_assignment(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let object = path_one(path)?;
    let a = state
        .store()
        .get_entra_assignment(&object)
        .await?
        .ok_or_else(ApiError::assignment_not_found)?;
    json(StatusCode::OK, &EntraAssignmentDto::from(a))
}

pub(super) async fn put_entra_assignment(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let object = path_one(path)?;
    let a = entra_request(object.clone(), &JsonObject::parse(&body, true)?)?;
    let created = state.store().update_entra_assignments(vec![(object, Some(a.clone()))]).await?;
    let status = if created.first().copied().unwrap_or(false) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json(status, &EntraAssignmentDto::from(a))
}

pub(super) async fn delete_entra_assignment(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let object = path_one(path)?;
    state.store().update_entra_assignments(vec![(object, None)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn list_entra_assignments(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    uri: Uri,
    headers: HeaderMap,
    transport: Option<Extension<Transport>>,
) -> Result<Response, ApiError> {
    let (size, after) = page_request(&uri, |t| guid(t, "continuationToken"))?;
    let mut items = state.store().list_entra_assignments(after.as_deref(), size + 1).await?;
    let next_link = next_link(&mut items, size, |last| {
        let origin = link_origin(&headers, transport);
        let last = &last.object_id;
        format!("{origin}/access/entra/assignments?api-version={version}&maxpagesize={size}&continuationToken={last}")
    });
    json(
        StatusCode::OK,
        &Page { value: items.into_iter().map(EntraAssignmentDto::from).collect(), next_link },
    )
}

pub(super) async fn patch_entra_assignments(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Value::Object(map) = serde_json::from_slice::<Value>(&body).map_err(|e| {
        ApiError::validation(format!("The request body is not valid JSON: {e}."), "body")
    })?
    else {
        return Err(ApiError::validation("The request body must be a JSON object.", "body"));
    };
    if map.len() > MAX_PATCH {
        return Err(ApiError::validation(
            format!("At most {MAX_PATCH} assignments may change at once."),
            "body",
        ));
    }
    let mut changes = Vec::with_capacity(map.len());
    for (key, value) in map {
        let object = guid(&key, "objectId")?;
        let change = match value {
            Value::Null => None,
            Value::Object(o) => {
                let o = JsonObject::parse(&serde_json::to_vec(&o).unwrap_or_default(), true)?;
                Some(entra_request(object.clone(), &o)?)
            }
            _ => {
                return Err(ApiError::validation(
                    format!("{object}: must be an assignment or null."),
                    "body",
                ))
            }
        };
        changes.push((object, change));
    }
    let upserted: Vec<EntraAssignmentDto> =
        changes.iter().filter_map(|(_, c)| c.clone()).map(EntraAssignmentDto::from).collect();
    state.store().update_entra_assignments(changes).await?;
    if upserted.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    json(StatusCode::OK, &Page { value: upserted, next_link: None })
}
