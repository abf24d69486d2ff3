//! The one error type of the HTTP layer, always answered with ACS's error envelope.

use acs_identity_core::store::StoreError;
use acs_identity_core::ScopeError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered as `{"error":{"code","message","target"?}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    target: Option<String>,
    retry_after: Option<u32>,
    www_authenticate: Option<&'static str>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            target: None,
            retry_after: None,
            www_authenticate: None,
        }
    }

    /// Adds a `target`.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The ACS error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// 400 `ValidationError`.
    pub fn validation(message: impl Into<String>, target: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "ValidationError", message).with_target(target)
    }

    /// 401 `IdentityNotOwned`, ACS's answer for any id that is not a user of this resource.
    pub fn identity_not_owned() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "IdentityNotOwned",
            "Provided identity doesn't belong to the resource.",
        )
    }

    /// 404 `IdentityNotFound`: the identity belonged to this resource and was deleted.
    pub fn identity_deleted() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "IdentityNotFound", "The identity has been deleted.")
    }

    /// 401 `Denied`, ACS's answer to a request it cannot authenticate.
    pub fn denied() -> Self {
        let mut e =
            ApiError::new(StatusCode::UNAUTHORIZED, "Denied", "Denied by the resource provider.");
        e.www_authenticate = Some("HMAC-SHA256, Bearer");
        e
    }

    /// 401 `Denied` for a bearer token that is missing, invalid or not allowed.
    pub fn bearer_denied() -> Self {
        let mut e =
            ApiError::new(StatusCode::UNAUTHORIZED, "Denied", "Denied by the resource provider.");
        e.www_authenticate = Some("Bearer error=\"invalid_token\"");
        e
    }

    /// 401 `InvalidAccessToken`: an Entra token presented for exchange is not valid.
    pub fn invalid_access_token() -> Self {
        let mut e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAccessToken",
            "Provided access token is not valid.",
        );
        e.www_authenticate = Some("Bearer error=\"invalid_token\"");
        e
    }

    /// 403 `Forbidden`: a valid Entra principal with no assignment for the exchange.
    pub fn not_assigned() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The principal has no assignment for this resource and client application.",
        )
    }

    /// 404 for an assignment that does not exist.
    pub fn assignment_not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "NotFound", "The assignment does not exist.")
    }

    /// 400 `ApiVersionUnspecified`.
    pub fn api_version_missing() -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "ApiVersionUnspecified",
            "An API version is required, but was not specified.",
        )
    }

    /// 400 `UnsupportedApiVersion`.
    pub fn api_version_unsupported(path: &str, version: &str) -> Self {
        let version: String = version.chars().filter(|c| !c.is_control()).take(64).collect();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "UnsupportedApiVersion",
            format!(
                "The HTTP resource that matches the request URI '{path}' does not support the API version '{version}'."
            ),
        )
    }

    /// 404 for a route that does not exist.
    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "NotFound", "The requested resource does not exist.")
    }

    /// 405 for a route that exists with another method.
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The requested method is not allowed for this resource.",
        )
    }

    /// 413 for a body over the limit.
    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            format!("The request body is larger than the limit of {limit} bytes."),
        )
    }

    /// 431 for a request head over the limit.
    pub fn header_fields_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "RequestHeaderFieldsTooLarge",
            format!(
                "The request line and header fields are larger than the limit of {limit} bytes."
            ),
        )
    }

    /// 408 for a request (its body included) that took longer than the limit.
    pub fn request_timeout(limit: std::time::Duration) -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeout",
            format!("The request was not completed within the limit of {} s.", limit.as_secs()),
        )
    }

    /// 503 with `Retry-After` when the most requests the node handles at once are in flight.
    pub fn overloaded() -> Self {
        ApiError::service_unavailable("The service is busy. Retry later.")
    }

    /// 500 with a generic message; the cause is logged, never sent.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %ErrorChain(cause), "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "An internal error occurred.",
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            format!("Rate limit exceeded. Retry after {retry_after_seconds} seconds."),
        );
        e.retry_after = Some(retry_after_seconds);
        e
    }

    /// Seconds in `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }

    /// 503 when the store cannot be reached.
    pub fn unavailable() -> Self {
        ApiError::service_unavailable("The service is temporarily unavailable. Retry later.")
    }

    /// 503 `ServiceUnavailable` saying `message`, with `Retry-After: 1`.
    fn service_unavailable(message: &'static str) -> Self {
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", message);
        e.retry_after = Some(1);
        e
    }
}

/// Formats an error with its sources, `a: b: c`.
#[derive(Debug)]
pub struct ErrorChain<'a>(pub &'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %ErrorChain(&e), "store unavailable");
                ApiError::unavailable()
            }
            other => ApiError::internal(&other),
        }
    }
}

impl From<ScopeError> for ApiError {
    fn from(e: ScopeError) -> Self {
        ApiError::validation(e.message, e.target)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Envelope {
            error: Body { code: self.code, message: &self.message, target: self.target.as_deref() },
        })
        .unwrap_or_default();
        let mut res = (self.status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.www_authenticate {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        res.extensions_mut().insert(ErrorCode(self.code));
        res
    }
}

/// The ACS error code of a response, for the request log.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrorCode(pub(crate) &'static str);
