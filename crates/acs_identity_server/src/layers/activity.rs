//! Feeds [`crate::activity::Activity`]: one count per answered operation.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::audit::AuditOperation;
use crate::operation::Operation;
use crate::AppState;

/// Audit names of the operations that issue a token when they succeed.
const ISSUING: [&str; 5] = [
    "identity.create_with_token",
    "token.issue",
    "teams_user.exchange",
    "teams_extension.exchange",
    "entra.exchange",
];

pub(crate) async fn record(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let op = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| Operation::find(request.method(), m.as_str()))
        .filter(|&op| op != Operation::GetActivity);
    let Some(op) = op else { return next.run(request).await };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    let audit =
        response.extensions().get::<AuditOperation>().map(|o| o.0).or(op.spec().audit_name());
    let tokens = u64::from(status.is_success() && audit.is_some_and(|a| ISSUING.contains(&a)));
    state.activity().record(op.spec().name, status.as_u16(), tokens, started.elapsed());
    response
}
