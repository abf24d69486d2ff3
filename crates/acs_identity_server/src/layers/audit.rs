//! The audit log's request side: one line for every state-changing request, whatever its
//! outcome, queued before the response is sent (the log itself is [`crate::audit`]).

use acs_identity_core::hmac::{percent_decode, KeyName};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, Method};
use axum::middleware::Next;
use axum::response::Response;
use time::format_description::well_known::Rfc3339;

use crate::audit::{cut, AuditOperation, AuditTarget, Line};
use crate::auth::Principal;
use crate::error::ErrorCode;
use crate::operation::Operation;
use crate::AppState;

static CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-client-request-id");

/// The audit name of the operation a route performs; `None` for reads and unknown routes.
fn operation(method: &Method, route: &str) -> Option<&'static str> {
    Operation::find(method, route)?.spec().audit_name()
}

/// The path parameters of `path` under the route template `route`, percent-decoded and
/// joined with `/`: the raw id of an identity, `tenant/object` of an assignment.
fn path_target(route: &str, path: &str) -> Option<String> {
    let params: Vec<String> = route
        .split('/')
        .zip(path.split('/'))
        .filter(|(t, _)| t.starts_with('{'))
        .map(|(_, p)| percent_decode(p).unwrap_or_else(|| p.to_owned()))
        .collect();
    (!params.is_empty()).then(|| params.join("/"))
}

/// `key:primary`, `principal:<object id>`, `app:<app id>` or `unauthenticated`.
fn who(principal: Option<&Principal>) -> String {
    match principal {
        Some(Principal::AccessKey(KeyName::Primary)) => "key:primary".to_owned(),
        Some(Principal::AccessKey(KeyName::Secondary)) => "key:secondary".to_owned(),
        Some(Principal::Entra { object_id: Some(oid), .. }) => format!("principal:{}", cut(oid)),
        Some(Principal::Entra { app_id: Some(app), .. }) => format!("app:{}", cut(app)),
        Some(Principal::Entra { .. }) => "principal:unknown".to_owned(),
        None => "unauthenticated".to_owned(),
    }
}

/// Middleware: one audit line per state-changing request, queued before the response goes.
pub(crate) async fn record(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !state.audit().is_enabled() {
        return next.run(request).await;
    }
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let Some((route, operation)) =
        route.and_then(|r| operation(request.method(), &r).map(|op| (r, op)))
    else {
        return next.run(request).await;
    };
    let time = state.clock().now().format(&Rfc3339).unwrap_or_default();
    let target = path_target(&route, request.uri().path());
    let client_request_id =
        request.headers().get(&CLIENT_REQUEST_ID).and_then(|v| v.to_str().ok()).map(cut);
    let response = next.run(request).await;
    let ext = response.extensions();
    let principal = ext.get::<Principal>();
    let line = Line {
        time,
        who: who(principal),
        app_id: match principal {
            Some(Principal::Entra { app_id, .. }) => app_id.as_deref(),
            _ => None,
        },
        operation: ext.get::<AuditOperation>().map_or(operation, |o| o.0),
        target: ext.get::<AuditTarget>().map(|t| t.0.clone()).or(target).map(|t| cut(&t)),
        status: response.status().as_u16(),
        error_code: ext.get::<ErrorCode>().map(|c| c.0),
        client_request_id,
    };
    match serde_json::to_vec(&line) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            state.audit().write(bytes).await;
        }
        Err(e) => tracing::error!(error = %e, "cannot format an audit line"),
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_path_parameters() {
        assert_eq!(
            path_target(
                "/identities/{id}/:revokeAccessTokens",
                "/identities/8%3Aacs%3Ar_u/:revokeAccessTokens"
            ),
            Some("8:acs:r_u".to_owned())
        );
        assert_eq!(
            path_target(
                "/access/teamsExtension/tenants/{tenant_id}/assignments/{object_id}",
                "/access/teamsExtension/tenants/t/assignments/o"
            ),
            Some("t/o".to_owned())
        );
        assert_eq!(path_target("/identities", "/identities"), None);
        assert_eq!(operation(&Method::GET, "/identities/{id}"), None);
        assert_eq!(operation(&Method::DELETE, "/identities/{id}"), Some("identity.delete"));
    }
}
