//! Fault injection: the next requests of an operation answered with an error, as the service
//! answers it (ACS's error envelope; `Retry-After` on 429 and 503).

use std::sync::{Arc, Mutex};

use acs_identity_server::error::ApiError;
use acs_identity_server::operation::Operation;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Faults waiting for their requests, in the order they were asked for.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pending: Mutex<Vec<Fault>>,
}

#[derive(Debug)]
struct Fault {
    op: Operation,
    status: StatusCode,
    left: usize,
}

impl Faults {
    pub(crate) fn add(&self, op: Operation, status: StatusCode, count: usize) {
        if count > 0 {
            self.lock().push(Fault { op, status, left: count });
        }
    }

    /// How many requests of `op` will still fail.
    pub(crate) fn pending(&self, op: Operation) -> usize {
        self.lock().iter().filter(|f| f.op == op).map(|f| f.left).sum()
    }

    /// Takes one failure for `op`, if one is waiting.
    fn take(&self, op: Operation) -> Option<StatusCode> {
        let mut pending = self.lock();
        let at = pending.iter().position(|f| f.op == op)?;
        let status = pending[at].status;
        pending[at].left -= 1;
        if pending[at].left == 0 {
            pending.remove(at);
        }
        Some(status)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Router layer: answers a request with the fault waiting for its operation, if any.
pub(crate) async fn inject(
    State(faults): State<Arc<Faults>>,
    request: Request,
    next: Next,
) -> Response {
    let op = request.extensions().get::<MatchedPath>().and_then(|path| {
        Operation::ALL
            .into_iter()
            .find(|op| op.spec().path == path.as_str() && op.spec().method == *request.method())
    });
    match op.and_then(|op| faults.take(op)) {
        Some(status) => error_for(status).into_response(),
        None => next.run(request).await,
    }
}

/// The service's own error for `status`.
fn error_for(status: StatusCode) -> ApiError {
    let code = match status {
        StatusCode::TOO_MANY_REQUESTS => return ApiError::too_many_requests(1),
        StatusCode::SERVICE_UNAVAILABLE => return ApiError::unavailable(),
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::UNAUTHORIZED => "Denied",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::REQUEST_TIMEOUT => "RequestTimeout",
        StatusCode::BAD_GATEWAY => "BadGateway",
        StatusCode::GATEWAY_TIMEOUT => "GatewayTimeout",
        s if s.is_server_error() => "InternalError",
        _ => "Error",
    };
    let message = format!(
        "Injected fault: {} {}.",
        status.as_u16(),
        status.canonical_reason().unwrap_or("error")
    );
    ApiError::new(status, code, message)
}
