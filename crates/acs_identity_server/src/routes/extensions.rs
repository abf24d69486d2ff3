//! This service's own read-only extensions, authenticated like every ACS route and
//! described in `openapi/extensions.json`: `GET /identities` (the identity list, which ACS
//! does not have), `GET /resource` and `GET /activity` (what the console shows).

use acs_identity_core::id::UserId;
use acs_identity_core::time_format::acs_datetime;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Extension;
use serde::Serialize;

use crate::error::ApiError;
use crate::routes::json;
use crate::routes::paging::{link_origin, next_link, page_request, Page};
use crate::transport::Transport;
use crate::AppState;

#[derive(Serialize)]
struct ListedIdentity {
    id: String,
    #[serde(rename = "customId", skip_serializing_if = "Option::is_none")]
    custom_id: Option<String>,
    #[serde(rename = "createdAt")]
    created_at: String,
    #[serde(rename = "lastTokenIssuedAt", skip_serializing_if = "Option::is_none")]
    last_token_issued_at: Option<String>,
    #[serde(rename = "deletedAt", skip_serializing_if = "Option::is_none")]
    deleted_at: Option<String>,
    /// `active`, `revoked` (its tokens were revoked at least once) or `deleted`.
    state: &'static str,
    /// Revocations so far.
    generation: u64,
}

/// A `continuationToken` of the identity list: the hyphenated id of the last identity of the
/// page before.
fn identity_token(t: &str) -> Result<UserId, ApiError> {
    let not_ours = || {
        ApiError::validation(
            "continuationToken is not one this service issued.",
            "continuationToken",
        )
    };
    let id = uuid::Uuid::parse_str(t).ok().filter(|_| t.len() == 36);
    id.map(UserId::from_uuid).ok_or_else(not_ours)
}

/// `GET /identities?maxpagesize=N&continuationToken=T`: identities newest first, live and
/// deleted, paged like ACS's assignment lists (`value`, `nextLink`).
pub(super) async fn list_identities(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    transport: Option<Extension<Transport>>,
) -> Result<Response, ApiError> {
    let (size, before) = page_request(&uri, identity_token)?;
    let mut records = state.store().list_identities(before, size + 1).await?;
    let next_link = next_link(&mut records, size, |last| {
        let origin = link_origin(&headers, transport);
        let last = last.user.as_uuid().as_hyphenated().to_string();
        format!("{origin}/identities?maxpagesize={size}&continuationToken={last}")
    });
    let resource = state.resource();
    let value = records
        .into_iter()
        .map(|r| ListedIdentity {
            last_token_issued_at: state.last_token_issued_at(&r).map(acs_datetime),
            id: r.user.raw_id(resource),
            state: if !r.is_live() {
                "deleted"
            } else if r.generation > 0 {
                "revoked"
            } else {
                "active"
            },
            custom_id: r.custom_id,
            created_at: acs_datetime(r.created_at),
            deleted_at: r.deleted_at.map(acs_datetime),
            generation: r.generation,
        })
        .collect();
    json(StatusCode::OK, &Page { value, next_link })
}

#[derive(Serialize)]
struct SigningKeyView {
    kid: String,
    alg: &'static str,
    #[serde(rename = "createdAt")]
    created_at: String,
}

#[derive(Serialize)]
struct ResourceView {
    #[serde(rename = "resourceId")]
    resource_id: String,
    #[serde(rename = "dataLocation")]
    data_location: String,
    #[serde(rename = "createdAt")]
    created_at: String,
    /// Live and deleted.
    identities: u64,
    /// Oldest first.
    #[serde(rename = "signingKeys")]
    signing_keys: Vec<SigningKeyView>,
    jwks: &'static str,
}

/// `GET /resource`: the resource's public facts. No access key or private key.
pub(super) async fn resource(State(state): State<AppState>) -> Result<Response, ApiError> {
    let Some(stored) = state.store().load_resource().await? else {
        return Err(ApiError::internal(&std::io::Error::other("the store lost its resource")));
    };
    let identities = state.store().count_identities().await?;
    let view = ResourceView {
        resource_id: stored.resource.resource_id.to_string(),
        data_location: stored.resource.data_location,
        created_at: acs_datetime(stored.resource.created_at),
        identities,
        signing_keys: stored
            .signing_keys
            .into_iter()
            .map(|k| SigningKeyView {
                kid: k.kid,
                alg: k.alg.as_str(),
                created_at: acs_datetime(k.created_at),
            })
            .collect(),
        jwks: "/.well-known/jwks.json",
    };
    json(StatusCode::OK, &view)
}

/// `GET /activity`: this node's counters (see [`crate::activity`]).
pub(super) async fn activity(State(state): State<AppState>) -> Result<Response, ApiError> {
    json(StatusCode::OK, &state.activity().snapshot())
}
