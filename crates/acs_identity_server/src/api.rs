//! Wire shapes: request parsing with ACS's validation errors, and response DTOs.
//!
//! Requests are read from a `serde_json::Value` by hand so that every wrong type,
//! missing field or bad value gets a `ValidationError` naming its field, as ACS does.
//! Unknown fields are ignored, as ASP.NET model binding ignores them.

use acs_identity_core::time_format::acs_datetime;
use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::error::ApiError;

/// Longest `customId` accepted (the spec's description says 256).
pub const MAX_CUSTOM_ID_CHARS: usize = 256;

/// A parsed JSON object body; an empty body reads as `{}` where a body is optional.
#[derive(Debug)]
pub struct JsonObject(Map<String, Value>);

impl JsonObject {
    /// Parses `body`. `required` makes an empty body an error.
    pub fn parse(body: &[u8], required: bool) -> Result<JsonObject, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            if required {
                return Err(ApiError::validation("A non-empty request body is required.", "body"));
            }
            return Ok(JsonObject(Map::new()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(Value::Null) if !required => Ok(JsonObject(Map::new())),
            Ok(_) => Err(ApiError::validation("The request body must be a JSON object.", "body")),
            Err(e) => Err(ApiError::validation(
                format!("The request body is not valid JSON: {e}."),
                "body",
            )),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// An optional array of strings.
    pub fn string_list(&self, name: &str, target: &str) -> Result<Option<Vec<String>>, ApiError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        let Value::Array(items) = v else {
            return Err(ApiError::validation(
                format!("{target}: The value must be an array of strings."),
                target,
            ));
        };
        items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(ApiError::validation(
                    format!("{target}: The value must be an array of strings."),
                    target,
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An optional 32-bit integer.
    pub fn int32(&self, name: &str, target: &str) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        match v.as_i64() {
            Some(n) if i32::try_from(n).is_ok() => Ok(Some(n)),
            Some(n) => Err(ApiError::validation(
                format!("ExpiresInMinutes value {n} is invalid. Value must be within the [60, 1440] interval."),
                target,
            )),
            None => Err(ApiError::validation(
                format!("{target}: The value {v} is not a valid 32-bit integer."),
                target,
            )),
        }
    }

    /// An optional string.
    pub fn string(&self, name: &str, target: &str) -> Result<Option<String>, ApiError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        match v {
            Value::String(s) => Ok(Some(s.clone())),
            _ => {
                Err(ApiError::validation(format!("{target}: The value must be a string."), target))
            }
        }
    }
}

/// `CommunicationIdentity`.
#[derive(Debug, Serialize)]
pub struct Identity {
    /// The raw id.
    pub id: String,
    /// 2025-03-02-preview only.
    #[serde(rename = "customId", skip_serializing_if = "Option::is_none")]
    pub custom_id: Option<String>,
    /// 2025-03-02-preview only.
    #[serde(rename = "lastTokenIssuedAt", skip_serializing_if = "Option::is_none")]
    pub last_token_issued_at: Option<String>,
}

/// `CommunicationIdentityAccessToken`. `Debug` never shows the token.
#[derive(Serialize)]
pub struct AccessToken {
    /// The JWT.
    pub token: String,
    /// ACS date-time.
    #[serde(rename = "expiresOn")]
    pub expires_on: String,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken").field("expires_on", &self.expires_on).finish_non_exhaustive()
    }
}

impl AccessToken {
    /// Wraps an issued token.
    pub fn new(token: String, expires_on: OffsetDateTime) -> Self {
        AccessToken { token, expires_on: acs_datetime(expires_on) }
    }
}

/// `CommunicationIdentityAccessTokenResult`.
#[derive(Debug, Serialize)]
pub struct IdentityAccessTokenResult {
    /// The identity.
    pub identity: Identity,
    /// Present when scopes were requested.
    #[serde(rename = "accessToken", skip_serializing_if = "Option::is_none")]
    pub access_token: Option<AccessToken>,
}

/// Answer of `POST /accessTokens/:validate`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ValidateResult {
    /// The token is good.
    Valid {
        /// Always `true`.
        valid: bool,
        /// The token's identity.
        identity: ValidIdentity,
        /// Its scopes.
        scopes: Vec<String>,
        /// Its expiry.
        #[serde(rename = "expiresOn")]
        expires_on: String,
    },
    /// The token is not good.
    Invalid {
        /// Always `false`.
        valid: bool,
        /// Why.
        reason: &'static str,
    },
}

/// `{"id": ...}`.
#[derive(Debug, Serialize)]
pub struct ValidIdentity {
    /// The raw id.
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_null_bodies_are_empty_objects_when_optional() {
        assert!(JsonObject::parse(b"", false).unwrap().0.is_empty());
        assert!(JsonObject::parse(b"  ", false).unwrap().0.is_empty());
        assert!(JsonObject::parse(b"null", false).unwrap().0.is_empty());
        assert!(JsonObject::parse(b"", true).is_err());
        assert!(JsonObject::parse(b"null", true).is_err());
    }

    #[test]
    fn access_token_debug_hides_the_token() {
        let t = AccessToken::new(
            "eyJhbGciOiJFUzI1NiJ9.e30.c2ln".to_owned(),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        assert!(!format!("{t:?}").contains("eyJ"));
    }

    #[test]
    fn wrong_shapes_are_validation_errors() {
        for bad in [&b"[1]"[..], b"\"x\"", b"{", b"{\"a\":}", b"\xff"] {
            let e = JsonObject::parse(bad, false).unwrap_err();
            assert_eq!(e.code(), "ValidationError");
        }
        let o = JsonObject::parse(br#"{"scopes":"chat","n":1.5,"m":99999999999,"s":3}"#, false)
            .unwrap();
        assert!(o.string_list("scopes", "scopes").is_err());
        assert!(o.int32("n", "ExpiresInMinutes").is_err());
        assert!(o.int32("m", "ExpiresInMinutes").is_err());
        assert!(o.string("s", "customId").is_err());
        assert_eq!(o.string_list("absent", "x").unwrap(), None);
    }
}
