//! The authority's HTTP endpoints, shaped like login.microsoftonline.com's.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::directory::{Application, Tenant, User};
use super::{Authority, PUBLIC_CLOUD_HOSTS, PUBLIC_CLOUD_ISSUER_HOST};

/// Lifetime of the tokens issued.
const TOKEN_SECONDS: i64 = 3600;
/// The OpenID Connect scopes, which name no resource.
const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];
/// Microsoft Graph, the resource of a request that names none.
const GRAPH: &str = "00000003-0000-0000-c000-000000000000";
/// The Identity API.
const ACS: &str = "https://communication.azure.com";
/// The Teams scopes' resource.
const TEAMS: &str = "https://auth.msft.communication.azure.com";

/// A resource the authority issues tokens for, and its delegated permissions.
struct Resource {
    uri: &'static str,
    permissions: &'static [&'static str],
    /// `scp` of a delegated token requested with `/.default`.
    default_scp: &'static str,
}

/// Longest URI first, so `…/clients/VoIP` is not read as permission `clients/VoIP` of ACS.
const RESOURCES: &[Resource] = &[
    Resource {
        uri: "https://communication.azure.com/clients",
        permissions: &["VoIP", "Chat"],
        default_scp: "VoIP Chat",
    },
    Resource {
        uri: TEAMS,
        permissions: &["Teams.ManageCalls", "Teams.ManageChats"],
        default_scp: "Teams.ManageCalls Teams.ManageChats",
    },
    Resource { uri: ACS, permissions: &["user_impersonation"], default_scp: "user_impersonation" },
];

/// The router of the authority's listener.
pub fn router(authority: Arc<Authority>) -> Router {
    Router::new()
        .route("/common/discovery/instance", get(instance_discovery))
        .route("/common/userrealm/{user}", get(user_realm))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(openid_v2))
        .route("/{tenant}/.well-known/openid-configuration", get(openid_v1))
        .route("/{tenant}/discovery/v2.0/keys", get(keys))
        .route("/{tenant}/discovery/keys", get(keys))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/{tenant}/oauth2/token", post(token))
        .fallback(not_found)
        .with_state(authority)
}

/// Reached through the proxy (`entra_proxy_listen`) as this Entra host name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proxied {
    /// One of [`PUBLIC_CLOUD_HOSTS`].
    pub(crate) host: &'static str,
}

/// Where a request came to: the base of the URLs in the answers, and of the issuers.
struct Site {
    /// `https://host[:port]`: what the request named, so the endpoints in the documents
    /// are on the host the client validated.
    base: String,
    /// The base of `iss`: the listener's own address, or through the proxy
    /// `https://login.microsoftonline.com`, as Entra names every public-cloud alias.
    issuer_base: String,
}

impl Site {
    fn of(a: &Authority, proxied: Option<Extension<Proxied>>) -> Site {
        match proxied {
            Some(Extension(p)) => Site {
                base: format!("https://{}", p.host),
                issuer_base: format!("https://{PUBLIC_CLOUD_ISSUER_HOST}"),
            },
            None => Site { base: a.base.clone(), issuer_base: a.base.clone() },
        }
    }

    fn issuer(&self, tenant_id: &str) -> String {
        format!("{}/{tenant_id}/v2.0", self.issuer_base)
    }
}

/// An Entra error: `{"error","error_description":"AADSTS…","error_codes",…}`.
#[derive(Debug)]
struct EntraError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
}

fn err(status: u16, error: &'static str, code: u32, description: impl Into<String>) -> EntraError {
    EntraError {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        error,
        code,
        description: description.into(),
    }
}

fn missing(parameter: &str) -> EntraError {
    err(
        400,
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{parameter}'."),
    )
}

impl EntraError {
    fn into_response(self, authority: &Authority, headers: &HeaderMap) -> Response {
        let now = authority.clock.now();
        let timestamp = entra_timestamp(now);
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| uuid::Uuid::parse_str(v).ok())
            .unwrap_or_else(uuid::Uuid::new_v4)
            .to_string();
        tracing::info!(error = self.error, code = self.code, "Entra authority refused a request");
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{}/error?code={}", authority.base, self.code),
        });
        no_store((self.status, Json(body)).into_response())
    }
}

fn entra_timestamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The tenant a path segment names: its id, or the first tenant for `common`,
/// `organizations` and `adfs`.
fn tenant<'a>(authority: &'a Authority, segment: &str) -> Option<&'a Tenant> {
    let tenants = &authority.directory.tenants;
    match segment.to_ascii_lowercase().as_str() {
        "common" | "organizations" | "adfs" => tenants.first(),
        id => tenants.iter().find(|t| t.tenant_id == id),
    }
}

fn unknown_tenant(segment: &str) -> EntraError {
    err(
        400,
        "invalid_tenant",
        90002,
        format!(
            "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and \
             are signing into the correct cloud."
        ),
    )
}

async fn openid_v2(
    State(a): State<Arc<Authority>>,
    proxied: Option<Extension<Proxied>>,
    Path(segment): Path<String>,
    headers: HeaderMap,
) -> Response {
    openid(&a, proxied, &segment, &headers, OpenIdVersion::V2)
}

/// The v1-style document; for `adfs` it is what the libraries read with `AZURE_TENANT_ID=adfs`.
async fn openid_v1(
    State(a): State<Arc<Authority>>,
    proxied: Option<Extension<Proxied>>,
    Path(segment): Path<String>,
    headers: HeaderMap,
) -> Response {
    openid(&a, proxied, &segment, &headers, OpenIdVersion::V1)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum OpenIdVersion {
    V1,
    V2,
}

fn openid(
    a: &Authority,
    proxied: Option<Extension<Proxied>>,
    segment: &str,
    headers: &HeaderMap,
    version: OpenIdVersion,
) -> Response {
    let Some(t) = tenant(a, segment) else {
        return unknown_tenant(segment).into_response(a, headers);
    };
    let site = Site::of(a, proxied);
    let base = format!("{}/{segment}", site.base);
    let (issuer, oauth2, jwks_uri) = match version {
        OpenIdVersion::V2 => (
            site.issuer(&t.tenant_id),
            format!("{base}/oauth2/v2.0"),
            format!("{base}/discovery/v2.0/keys"),
        ),
        OpenIdVersion::V1 => (
            if segment.eq_ignore_ascii_case("adfs") {
                format!("{}/adfs", site.issuer_base)
            } else {
                site.issuer(&t.tenant_id)
            },
            format!("{base}/oauth2"),
            format!("{base}/discovery/keys"),
        ),
    };
    Json(openid_document(&issuer, &oauth2, &jwks_uri, &t.tenant_id)).into_response()
}

fn openid_document(issuer: &str, oauth2: &str, jwks_uri: &str, tenant_id: &str) -> Value {
    json!({
        "token_endpoint": format!("{oauth2}/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": jwks_uri,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{oauth2}/authorize"),
        "device_authorization_endpoint": format!("{oauth2}/devicecode"),
        "end_session_endpoint": format!("{oauth2}/logout"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "grant_types_supported": ["client_credentials", "password"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "preferred_username", "tid", "ver"],
        "tenant_region_scope": null,
        "tenant_id": tenant_id,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    })
}

async fn keys(State(a): State<Arc<Authority>>) -> Response {
    Json(a.jwks.clone()).into_response()
}

/// `GET /common/userrealm/{user}`: `Managed` for a user of the directory, `Unknown` else.
async fn user_realm(State(a): State<Arc<Authority>>, Path(user): Path<String>) -> Response {
    let known = a.directory.tenants.iter().any(|t| t.user(&user).is_some());
    let mut doc = json!({
        "ver": "1.0",
        "account_type": if known { "Managed" } else { "Unknown" },
        "cloud_instance_name": "microsoftonline.com",
        "cloud_audience_urn": "urn:federation:MicrosoftOnline",
    });
    if known {
        doc["domain_name"] = user.rsplit_once('@').map_or("", |(_, d)| d).into();
    }
    Json(doc).into_response()
}

/// `GET /common/discovery/instance`: the tenant's OpenID configuration on the host the
/// request came to. Through the proxy the aliases are the public cloud's, as Entra lists them;
/// on the listener its own host is the only one.
async fn instance_discovery(
    State(a): State<Arc<Authority>>,
    proxied: Option<Extension<Proxied>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let (host, metadata) = match proxied {
        Some(Extension(p)) => (
            p.host.to_owned(),
            json!([{
                "preferred_network": PUBLIC_CLOUD_ISSUER_HOST,
                "preferred_cache": "login.windows.net",
                "aliases": PUBLIC_CLOUD_HOSTS,
            }]),
        ),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_else(|| a.base.trim_start_matches("https://").to_owned());
            let metadata =
                json!([{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]);
            (host, metadata)
        }
    };
    let tenant = query
        .get("authorization_endpoint")
        .and_then(|e| url::Url::parse(e).ok())
        .and_then(|u| u.path_segments().and_then(|mut s| s.next().map(str::to_owned)))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "common".to_owned());
    Json(json!({
        "tenant_discovery_endpoint": format!("https://{host}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": metadata,
    }))
    .into_response()
}

async fn not_found(State(a): State<Arc<Authority>>, headers: HeaderMap) -> Response {
    let mut r = err(
        404,
        "invalid_request",
        900561,
        "The endpoint only accepts the requests of the local Entra authority.",
    )
    .into_response(&a, &headers);
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// The scopes of a request, read like Entra reads them.
#[derive(Debug)]
struct Scopes {
    /// The resource's URI as requested (its `aud`), if any.
    aud: Option<String>,
    /// Resource scopes as requested (the response's `scope`).
    requested: Vec<String>,
    /// The permissions for `scp` (delegated tokens).
    scp: Vec<String>,
    /// Whether the only resource scope is `…/.default`.
    default: bool,
    /// `openid` was asked for: an id token is returned.
    openid: bool,
}

fn invalid_scope(scope: &str) -> EntraError {
    err(
        400,
        "invalid_scope",
        70011,
        format!(
            "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
        ),
    )
}

fn unknown_resource(resource: &str, tenant_id: &str) -> EntraError {
    err(
        400,
        "invalid_resource",
        500011,
        format!(
            "The resource principal named {resource} was not found in the tenant named {tenant_id}. \
             This can happen if the application has not been installed by the administrator of \
             the tenant or consented to by any user in the tenant. You might have sent your \
             authentication request to the wrong tenant."
        ),
    )
}

fn parse_scopes(scope: &str, tenant_id: &str) -> Result<Scopes, EntraError> {
    let mut out =
        Scopes { aud: None, requested: Vec::new(), scp: Vec::new(), default: false, openid: false };
    let mut resource: Option<&Resource> = None;
    for s in scope.split_whitespace() {
        if OIDC_SCOPES.contains(&s) {
            out.openid |= s == "openid";
            continue;
        }
        let found = RESOURCES.iter().find_map(|r| {
            let rest = s.strip_prefix(r.uri)?;
            let (aud, perm) = match rest.strip_prefix("//") {
                Some(perm) => (format!("{}/", r.uri), perm),
                None => (r.uri.to_owned(), rest.strip_prefix('/')?),
            };
            (!perm.is_empty() && !perm.contains('/')).then_some((r, aud, perm))
        });
        let Some((r, aud, perm)) = found else {
            let name = match s.rsplit_once('/') {
                Some((res, _)) => res,
                None => "https://graph.microsoft.com",
            };
            return Err(unknown_resource(name, tenant_id));
        };
        if let Some(prev) = resource {
            if prev.uri != r.uri {
                return Err(err(
                    400,
                    "invalid_scope",
                    28000,
                    format!(
                        "Provided value for the input parameter scope is not valid because it \
                         contains more than one resource. Scope {scope} is not valid."
                    ),
                ));
            }
        }
        resource = Some(r);
        out.aud.get_or_insert(aud);
        if perm == ".default" {
            out.default = true;
            out.scp.extend(r.default_scp.split(' ').map(str::to_owned));
        } else if r.permissions.contains(&perm) {
            out.scp.push(perm.to_owned());
        } else {
            return Err(invalid_scope(s));
        }
        out.requested.push(s.to_owned());
    }
    out.scp.sort();
    out.scp.dedup();
    Ok(out)
}

/// `POST /{tenant}/oauth2/v2.0/token` (and the v1 path `adfs` uses).
async fn token(
    State(a): State<Arc<Authority>>,
    proxied: Option<Extension<Proxied>>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let site = Site::of(&a, proxied);
    match issue(&a, &site, &segment, &headers, &body) {
        Ok(doc) => no_store(Json(doc).into_response()),
        Err(e) => e.into_response(&a, &headers),
    }
}

fn issue(
    a: &Authority,
    site: &Site,
    segment: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, EntraError> {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let Some(t) = tenant(a, segment) else {
        let mut e = unknown_tenant(segment);
        e.error = "invalid_request";
        return Err(e);
    };
    let grant = field("grant_type").ok_or_else(|| missing("grant_type"))?;
    if !matches!(grant, "client_credentials" | "password") {
        return Err(err(
            400,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        ));
    }
    let basic = basic_credentials(headers);
    let client_id = field("client_id")
        .map(str::to_owned)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or_else(|| missing("client_id"))?;
    let app = t.application(&client_id).ok_or_else(|| {
        err(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. \
                 This can happen if the application has not been installed by the administrator \
                 of the tenant or consented to by any user in the tenant. You may have sent your \
                 authentication request to the wrong tenant.",
                t.tenant_id
            ),
        )
    })?;
    let secret = field("client_secret").map(str::to_owned).or_else(|| basic.map(|(_, s)| s));
    let confidential = match (&secret, &app.client_secret) {
        (Some(given), Some(known)) if known.matches(given) => true,
        (Some(_), _) => {
            return Err(err(
                401,
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request \
                     is the client secret value, not the client secret ID, for a secret added to \
                     app '{}'.",
                    app.client_id
                ),
            ))
        }
        (None, _) if grant == "client_credentials" => {
            return Err(err(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or \
                 'client_secret'.",
            ))
        }
        (None, _) => false,
    };
    let scope = match (field("scope"), field("resource")) {
        (Some(s), _) => s.to_owned(),
        // v1 requests name a resource instead.
        (None, Some(r)) => format!("{}/.default", r.trim_end_matches('/')),
        (None, None) => return Err(missing("scope")),
    };
    let scopes = parse_scopes(&scope, &t.tenant_id)?;
    let issued_by = if segment.eq_ignore_ascii_case("adfs") {
        format!("{}/adfs", site.issuer_base)
    } else {
        site.issuer(&t.tenant_id)
    };
    let now = a.clock.now();
    let doc = if grant == "client_credentials" {
        if !scopes.default || scopes.requested.len() != 1 || scopes.openid {
            return Err(err(
                400,
                "invalid_scope",
                1002012,
                format!(
                    "The provided value for scope {scope} is not valid. Client credential flows \
                     must have a scope value with /.default suffixed to the resource identifier \
                     (application ID URI)."
                ),
            ));
        }
        app_token(a, site, t, app, &scopes, now)?
    } else {
        let username = field("username").ok_or_else(|| missing("username"))?;
        let password = field("password").ok_or_else(|| missing("password"))?;
        let user = t.user(username).ok_or_else(|| {
            err(
                400,
                "invalid_grant",
                50034,
                format!(
                    "The user account {{EUII Hidden}} does not exist in the {} directory. To sign \
                     into this application, the account must be added to the directory.",
                    t.tenant_id
                ),
            )
        })?;
        if !user.password.matches(password) {
            return Err(err(
                400,
                "invalid_grant",
                50126,
                "Error validating credentials due to invalid username or password.",
            ));
        }
        let mut doc = user_token(a, site, t, app, user, &scopes, confidential, now)?;
        if scopes.openid {
            doc["id_token"] = id_token(a, t, app, user, &issued_by, now)?.into();
        }
        if field("client_info") == Some("1") {
            let info = json!({"uid": user.object_id, "utid": t.tenant_id});
            doc["client_info"] = URL_SAFE_NO_PAD.encode(info.to_string()).into();
        }
        doc
    };
    tracing::info!(tenant = %t.tenant_id, client_id = %app.client_id, grant, "Entra authority issued a token");
    Ok(doc)
}

/// `Authorization: Basic base64(client_id:client_secret)` (`client_secret_basic`).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The pairwise `sub`: the same for one user and application, different across applications.
fn pairwise_sub(object_id: &str, client_id: &str) -> String {
    let hash = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{object_id}/{client_id}").as_bytes(),
    );
    URL_SAFE_NO_PAD.encode(hash.as_ref())
}

fn times(now: OffsetDateTime) -> (i64, i64, i64) {
    let iat = now.unix_timestamp();
    (iat, iat - 300, iat + TOKEN_SECONDS)
}

fn sign(a: &Authority, claims: &Value) -> Result<String, EntraError> {
    a.key.sign_json(claims).map_err(|e| {
        tracing::error!(error = %e, "Entra authority cannot sign");
        err(500, "temporarily_unavailable", 90033, "The service is temporarily unavailable.")
    })
}

fn token_response(scopes: &Scopes, access_token: String) -> Value {
    let scope = if scopes.requested.is_empty() {
        "openid profile email".to_owned()
    } else {
        scopes.requested.join(" ")
    };
    json!({
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": TOKEN_SECONDS,
        "ext_expires_in": TOKEN_SECONDS,
        "access_token": access_token,
    })
}

fn app_token(
    a: &Authority,
    site: &Site,
    t: &Tenant,
    app: &Application,
    scopes: &Scopes,
    now: OffsetDateTime,
) -> Result<Value, EntraError> {
    let aud = scopes.aud.clone().unwrap_or_else(|| GRAPH.to_owned());
    if aud.trim_end_matches('/') == ACS && !app.acs_access {
        return Err(err(
            400,
            "invalid_grant",
            501051,
            format!(
                "Application '{}' is not assigned to a role for the application '{ACS}'.",
                app.client_id
            ),
        ));
    }
    let (iat, nbf, exp) = times(now);
    let oid = app.service_principal_id(&t.tenant_id);
    let issuer = site.issuer(&t.tenant_id);
    let claims = json!({
        "aud": aud, "iss": issuer, "iat": iat, "nbf": nbf, "exp": exp,
        "azp": app.client_id, "azpacr": "1", "idp": issuer, "idtyp": "app",
        "oid": oid, "sub": oid, "tid": t.tenant_id, "uti": random_id(), "ver": "2.0",
    });
    Ok(token_response(scopes, sign(a, &claims)?))
}

#[allow(clippy::too_many_arguments)]
fn user_token(
    a: &Authority,
    site: &Site,
    t: &Tenant,
    app: &Application,
    user: &User,
    scopes: &Scopes,
    confidential: bool,
    now: OffsetDateTime,
) -> Result<Value, EntraError> {
    let aud = scopes.aud.clone().unwrap_or_else(|| GRAPH.to_owned());
    if aud.trim_end_matches('/') == TEAMS && !user.teams_enabled {
        return Err(err(
            400,
            "invalid_grant",
            50105,
            format!(
                "Your administrator has configured the application '{TEAMS}' to block users \
                 unless they are specifically granted ('assigned') access to the application. \
                 The signed in user is not assigned to a role for the application '{}'.",
                app.client_id
            ),
        ));
    }
    let scp = if scopes.scp.is_empty() {
        "openid profile email".to_owned()
    } else {
        scopes.scp.join(" ")
    };
    let (iat, nbf, exp) = times(now);
    let mut claims = json!({
        "aud": aud, "iss": site.issuer(&t.tenant_id), "iat": iat, "nbf": nbf, "exp": exp,
        "acr": "1", "amr": ["pwd"], "azp": app.client_id,
        "azpacr": if confidential { "1" } else { "0" },
        "idtyp": "user", "oid": user.object_id,
        "preferred_username": user.username, "scp": scp,
        "sub": pairwise_sub(&user.object_id, &app.client_id), "tid": t.tenant_id,
        "uti": random_id(), "ver": "2.0",
    });
    if let Some(name) = &user.display_name {
        claims["name"] = name.as_str().into();
    }
    if let Some(name) = &app.display_name {
        claims["app_displayname"] = name.as_str().into();
    }
    Ok(token_response(scopes, sign(a, &claims)?))
}

fn id_token(
    a: &Authority,
    t: &Tenant,
    app: &Application,
    user: &User,
    issuer: &str,
    now: OffsetDateTime,
) -> Result<String, EntraError> {
    let (iat, nbf, exp) = times(now);
    let mut claims = json!({
        "aud": app.client_id, "iss": issuer, "iat": iat, "nbf": nbf, "exp": exp,
        "oid": user.object_id, "preferred_username": user.username,
        "sub": pairwise_sub(&user.object_id, &app.client_id), "tid": t.tenant_id,
        "uti": random_id(), "ver": "2.0",
    });
    if let Some(name) = &user.display_name {
        claims["name"] = name.as_str().into();
    }
    sign(a, &claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_name_one_known_resource() {
        let tid = "t";
        let s = parse_scopes("https://communication.azure.com//.default", tid).unwrap();
        assert_eq!(s.aud.as_deref(), Some("https://communication.azure.com/"));
        assert!(s.default && !s.openid);
        let s = parse_scopes(
            "https://auth.msft.communication.azure.com/Teams.ManageCalls \
             https://auth.msft.communication.azure.com/Teams.ManageChats openid profile offline_access",
            tid,
        )
        .unwrap();
        assert_eq!(s.aud.as_deref(), Some(TEAMS));
        assert_eq!(s.scp, ["Teams.ManageCalls", "Teams.ManageChats"]);
        assert!(s.openid && !s.default);
        let s = parse_scopes("https://communication.azure.com/clients/VoIP", tid).unwrap();
        assert_eq!(s.aud.as_deref(), Some("https://communication.azure.com/clients"));
        assert_eq!(parse_scopes("User.Read", tid).unwrap_err().code, 500011);
        assert_eq!(parse_scopes("https://vault.azure.net/.default", tid).unwrap_err().code, 500011);
        assert_eq!(
            parse_scopes("https://auth.msft.communication.azure.com/Teams.Nope", tid)
                .unwrap_err()
                .code,
            70011
        );
        assert_eq!(
            parse_scopes(
                "https://communication.azure.com/.default https://auth.msft.communication.azure.com/Teams.ManageCalls",
                tid
            )
            .unwrap_err()
            .code,
            28000
        );
    }

    #[test]
    fn timestamps_look_like_entras() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(entra_timestamp(t), "2023-11-14 22:13:20Z");
    }
}
