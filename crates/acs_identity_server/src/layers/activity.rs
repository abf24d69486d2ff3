//! Observes every request once and feeds both the activity counters
//! ([`crate::activity::Activity`], `GET /activity`, the console's charts) and the Prometheus
//! metrics ([`crate::telemetry::Metrics`], `GET /metrics`) from that one observation, so the
//! two always agree.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::audit::AuditOperation;
use crate::telemetry::{Failure, Observation, Route};
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
    let matched = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let Some(route) = Route::of(request.method(), matched) else {
        return next.run(request).await;
    };
    let in_flight = state.metrics().begin();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    drop(in_flight);
    let status = response.status();
    let audit = match route {
        Route::Operation(op) => {
            response.extensions().get::<AuditOperation>().map(|o| o.0).or(op.spec().audit_name())
        }
        Route::Other(_) => None,
    };
    let tokens = u64::from(status.is_success() && audit.is_some_and(|a| ISSUING.contains(&a)));
    let observation = Observation {
        route,
        status,
        tokens,
        elapsed,
        failure: response.extensions().get::<Failure>().copied(),
    };
    state.activity().record(route.name(), status.as_u16(), tokens, elapsed);
    state.metrics().record(&observation);
    response
}
