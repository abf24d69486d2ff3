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
use crate::transport::Transport;
use crate::AppState;

/// Identities per page when `maxpagesize` is not given, and at most.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

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

#[derive(Serialize)]
struct IdentityPage {
    value: Vec<ListedIdentity>,
    #[serde(rename = "nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

/// `GET /identities?maxpagesize=N&continuationToken=T`: identities newest first, live and
/// deleted, paged like ACS's assignment lists (`value`, `nextLink`).
pub(super) async fn list_identities(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    transport: Option<Extension<Transport>>,
) -> Result<Response, ApiError> {
    let size = match query_param(&uri, "maxpagesize") {
        None => DEFAULT_PAGE,
        Some(v) => {
            v.parse::<u32>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
                ApiError::validation(
                    format!("maxpagesize must be within [1, {MAX_PAGE}]."),
                    "maxpagesize",
                )
            })?
        }
    };
    let before = match query_param(&uri, "continuationToken") {
        None => None,
        Some(t) => Some(
            uuid::Uuid::parse_str(t)
                .ok()
                .filter(|_| t.len() == 36)
                .map(UserId::from_uuid)
                .ok_or_else(|| {
                    ApiError::validation(
                        "continuationToken is not one this service issued.",
                        "continuationToken",
                    )
                })?,
        ),
    };
    let mut records = state.store().list_identities(before, size + 1).await?;
    let next_link = if records.len() > size as usize {
        records.truncate(size as usize);
        let last = records.last().map(|r| r.user.as_uuid().as_hyphenated().to_string());
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let scheme = transport.map_or(Transport::Https, |t| t.0).scheme();
        last.map(|last| {
            format!("{scheme}://{host}/identities?maxpagesize={size}&continuationToken={last}")
        })
    } else {
        None
    };
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
    json(StatusCode::OK, &IdentityPage { value, next_link })
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
