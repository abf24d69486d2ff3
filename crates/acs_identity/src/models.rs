//! Models and method options of the Identity API.

use acs_common::identifier::CommunicationUserIdentifier;
use azure_core::{
    credentials::{AccessToken, Secret},
    fmt::SafeDebug,
    http::{response::ResponseBody, ClientMethodOptions, DeserializeWith, Format},
    time::{Duration, OffsetDateTime},
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::{convert::Infallible, fmt, str::FromStr};

/// Defines a string enum of the wire: known values as variants, anything else kept in
/// `UnknownValue`, with `as_str`, `Display`, `FromStr`, `From<&str>`, `From<String>` and serde.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
            /// A value this version of the library does not know.
            UnknownValue(String),
        }

        impl $name {
            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::UnknownValue(value) => value,
                }
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Infallible;

            /// Parses a wire value; unknown values become `UnknownValue`.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $( $wire => Self::$variant, )+
                    other => Self::UnknownValue(other.to_owned()),
                })
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value.parse() {
                    Ok(parsed) => parsed,
                    Err(never) => match never {},
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::from(value.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Ok(String::deserialize(deserializer)?.into())
            }
        }
    };
}

/// A page of a list operation as the client's pager reads it: the link to the next page.
pub(crate) trait ListPage: azure_core::http::pager::Page {
    /// The service's `nextLink`, if there is a next page.
    fn next_link(&self) -> Option<&str>;
}

/// Defines one page of a list operation: `value` and the service's `nextLink`, with the
/// `Page` implementation that yields the values and [`ListPage`] for the pager.
macro_rules! list_page {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(#[$value_meta:meta])*
            pub value: Vec<$item:ty>,
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Deserialize)]
        #[serde(rename_all = "camelCase")]
        #[non_exhaustive]
        pub struct $name {
            $(#[$value_meta])*
            pub value: Vec<$item>,
            /// The link to the next page, if there is one.
            #[serde(default)]
            pub next_link: Option<String>,
        }

        #[async_trait::async_trait]
        impl azure_core::http::pager::Page for $name {
            type Item = $item;
            type IntoIter = std::vec::IntoIter<$item>;

            async fn into_items(self) -> azure_core::Result<Self::IntoIter> {
                Ok(self.value.into_iter())
            }
        }

        impl $crate::models::ListPage for $name {
            fn next_link(&self) -> Option<&str> {
                self.next_link.as_deref()
            }
        }
    };
}

mod assignments;
pub use assignments::*;
mod users;
pub use users::*;

wire_enum! {
    /// The scope of a user access token: which Communication Services features the user may use.
    ///
    /// The set of scopes grows over time, so unknown values are kept in
    /// [`UnknownValue`](Self::UnknownValue) instead of being rejected.
    ///
    /// ```
    /// use acs_identity::models::CommunicationTokenScope;
    ///
    /// assert_eq!(CommunicationTokenScope::ChatJoinLimited.as_str(), "chat.join.limited");
    /// assert_eq!("voip".parse::<CommunicationTokenScope>().unwrap(), CommunicationTokenScope::VoIP);
    /// assert_eq!(
    ///     CommunicationTokenScope::from("email"),
    ///     CommunicationTokenScope::UnknownValue("email".to_string()),
    /// );
    /// ```
    pub enum CommunicationTokenScope {
        /// `chat`: full access to the Chat APIs.
        Chat = "chat",
        /// `voip`: full access to the Calling APIs.
        VoIP = "voip",
        /// `chat.join`: Chat without creating, deleting or updating threads (api-version 2023-10-01+).
        ChatJoin = "chat.join",
        /// `chat.join.limited`: like `chat.join`, but cannot add or remove participants
        /// (api-version 2023-10-01+).
        ChatJoinLimited = "chat.join.limited",
        /// `voip.join`: Calling without starting new calls (api-version 2023-10-01+).
        VoIPJoin = "voip.join",
    }
}

/// A user access token and its expiry.
///
/// The token is a [`Secret`]: `Debug` never prints it; read it with `token.secret()`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CommunicationAccessToken {
    /// The token (a JWT) to hand to the user's client application.
    pub token: Secret,
    /// When the token expires. The service sends RFC 3339 with any UTC offset.
    #[serde(with = "azure_core::time::rfc3339")]
    pub expires_on: OffsetDateTime,
}

impl CommunicationAccessToken {
    /// Creates a token, for example to fake responses in tests.
    pub fn new(token: impl Into<Secret>, expires_on: OffsetDateTime) -> Self {
        Self { token: token.into(), expires_on }
    }
}

impl From<CommunicationAccessToken> for AccessToken {
    fn from(value: CommunicationAccessToken) -> Self {
        AccessToken::new(value.token, value.expires_on)
    }
}

/// A newly created user together with its first access token.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "IdentityAccessTokenResult")]
#[non_exhaustive]
pub struct CommunicationUserIdentifierAndToken {
    /// The new user.
    pub user: CommunicationUserIdentifier,
    /// The access token issued for the user.
    pub access_token: CommunicationAccessToken,
}

impl CommunicationUserIdentifierAndToken {
    /// Creates the pair, for example to fake responses in tests.
    pub fn new(user: CommunicationUserIdentifier, access_token: CommunicationAccessToken) -> Self {
        Self { user, access_token }
    }
}

impl TryFrom<IdentityAccessTokenResult> for CommunicationUserIdentifierAndToken {
    type Error = String;

    fn try_from(value: IdentityAccessTokenResult) -> Result<Self, Self::Error> {
        let access_token =
            value.access_token.ok_or_else(|| "the response has no 'accessToken'".to_owned())?;
        Ok(Self { user: CommunicationUserIdentifier::new(value.identity.id), access_token })
    }
}

/// Details of a user, returned by
/// [`get_user_detail`](crate::CommunicationIdentityClient::get_user_detail).
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "IdentityModel")]
#[non_exhaustive]
pub struct CommunicationUserDetail {
    /// The user.
    pub user: CommunicationUserIdentifier,
    /// The custom id associated with the user when it was created, if any.
    pub custom_id: Option<String>,
    /// When a token was last issued for the user, if ever.
    pub last_token_issued_at: Option<OffsetDateTime>,
}

impl CommunicationUserDetail {
    /// Creates user details, for example to fake responses in tests.
    pub fn new(user: CommunicationUserIdentifier) -> Self {
        Self { user, custom_id: None, last_token_issued_at: None }
    }
}

impl From<IdentityModel> for CommunicationUserDetail {
    fn from(value: IdentityModel) -> Self {
        Self {
            user: CommunicationUserIdentifier::new(value.id),
            custom_id: value.custom_id,
            last_token_issued_at: value.last_token_issued_at,
        }
    }
}

/// Wire model `CommunicationIdentity`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdentityModel {
    id: String,
    #[serde(default)]
    custom_id: Option<String>,
    #[serde(default, with = "azure_core::time::rfc3339::option")]
    last_token_issued_at: Option<OffsetDateTime>,
}

/// Wire model `CommunicationIdentityAccessTokenResult`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdentityAccessTokenResult {
    identity: IdentityModel,
    #[serde(default)]
    access_token: Option<CommunicationAccessToken>,
}

/// The body format of `POST /identities` when only the identity is of interest.
///
/// The body is JSON, `{"identity": {"id": …}, …}`; with this format
/// [`Response::into_model`](azure_core::http::Response::into_model) yields the
/// [`CommunicationUserIdentifier`] of the `identity`.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdentityResultFormat;

impl Format for IdentityResultFormat {
    fn deserialize<T: serde::de::DeserializeOwned, S: AsRef<[u8]>>(
        body: S,
    ) -> azure_core::Result<T> {
        azure_core::json::from_json(body)
    }
}

impl DeserializeWith<IdentityResultFormat> for CommunicationUserIdentifier {
    fn deserialize_with(body: ResponseBody) -> azure_core::Result<Self> {
        let result: IdentityAccessTokenResult = body.json()?;
        Ok(CommunicationUserIdentifier::new(result.identity.id))
    }
}

/// The service's verdict on an access token, returned by
/// [`validate_token`](crate::CommunicationIdentityClient::validate_token).
///
/// An acs-identity extension: Azure Communication Services has no such operation.
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "TokenValidationModel")]
#[non_exhaustive]
pub struct TokenValidation {
    /// Whether the token is valid: well-formed, signed by this resource, not expired, not
    /// revoked, and its user not deleted.
    pub valid: bool,
    /// The token's user, when the token is valid.
    pub user: Option<CommunicationUserIdentifier>,
    /// The token's scopes, when the token is valid.
    pub scopes: Vec<CommunicationTokenScope>,
    /// When the token expires, when the token is valid.
    pub expires_on: Option<OffsetDateTime>,
    /// Why the token is not valid: `malformed`, `signature`, `foreign`, `expired`, `revoked` or
    /// `deleted` (other values may be added).
    pub reason: Option<String>,
}

impl From<TokenValidationModel> for TokenValidation {
    fn from(value: TokenValidationModel) -> Self {
        Self {
            valid: value.valid,
            user: value.identity.map(|identity| CommunicationUserIdentifier::new(identity.id)),
            scopes: value.scopes,
            expires_on: value.expires_on,
            reason: value.reason,
        }
    }
}

/// Wire model of the answer of `POST /accessTokens/:validate`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenValidationModel {
    valid: bool,
    #[serde(default)]
    identity: Option<IdentityModel>,
    #[serde(default)]
    scopes: Vec<CommunicationTokenScope>,
    #[serde(default, with = "azure_core::time::rfc3339::option")]
    expires_on: Option<OffsetDateTime>,
    #[serde(default)]
    reason: Option<String>,
}

/// Required parameters of
/// [`get_token_for_teams_user`](crate::CommunicationIdentityClient::get_token_for_teams_user).
#[derive(Clone, SafeDebug)]
pub struct GetTokenForTeamsUserOptions {
    /// The Entra ID access token of the Teams user.
    pub teams_user_aad_token: Secret,
    /// The client (application) id of the Entra application; must match the token's `appid`
    /// claim.
    #[safe(true)]
    pub client_id: String,
    /// The Entra object id of the user; must match the token's `oid` claim.
    #[safe(true)]
    pub user_object_id: String,
}

impl GetTokenForTeamsUserOptions {
    /// Creates the parameters.
    pub fn new(
        teams_user_aad_token: impl Into<Secret>,
        client_id: impl Into<String>,
        user_object_id: impl Into<String>,
    ) -> Self {
        Self {
            teams_user_aad_token: teams_user_aad_token.into(),
            client_id: client_id.into(),
            user_object_id: user_object_id.into(),
        }
    }
}

/// Options for [`create_user`](crate::CommunicationIdentityClient::create_user).
#[derive(Clone, Default, SafeDebug)]
pub struct CommunicationIdentityClientCreateUserOptions<'a> {
    /// Options for the method call, such as its [`Context`](azure_core::http::Context).
    pub method_options: ClientMethodOptions<'a>,
    /// Your own id for the user (api-version `2025-03-02-preview`). Creating a user with a custom
    /// id that is already in use returns the existing user.
    pub custom_id: Option<String>,
}

/// Options for
/// [`create_user_and_token`](crate::CommunicationIdentityClient::create_user_and_token).
#[derive(Clone, Default, SafeDebug)]
pub struct CommunicationIdentityClientCreateUserAndTokenOptions<'a> {
    /// Options for the method call, such as its [`Context`](azure_core::http::Context).
    pub method_options: ClientMethodOptions<'a>,
    /// How long the token is valid: whole minutes between 1 and 24 hours (api-version
    /// `2022-10-01` or later). The service default is 24 hours.
    #[safe(true)]
    pub expires_in: Option<Duration>,
    /// Your own id for the user (api-version `2025-03-02-preview`).
    pub custom_id: Option<String>,
}

/// Options for [`get_token`](crate::CommunicationIdentityClient::get_token).
#[derive(Clone, Default, SafeDebug)]
pub struct CommunicationIdentityClientGetTokenOptions<'a> {
    /// Options for the method call, such as its [`Context`](azure_core::http::Context).
    pub method_options: ClientMethodOptions<'a>,
    /// How long the token is valid: whole minutes between 1 and 24 hours (api-version
    /// `2022-10-01` or later). The service default is 24 hours.
    #[safe(true)]
    pub expires_in: Option<Duration>,
}

/// Options for [`revoke_tokens`](crate::CommunicationIdentityClient::revoke_tokens).
#[derive(Clone, Default, SafeDebug)]
pub struct CommunicationIdentityClientRevokeTokensOptions<'a> {
    /// Options for the method call, such as its [`Context`](azure_core::http::Context).
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for [`delete_user`](crate::CommunicationIdentityClient::delete_user).
#[derive(Clone, Default, SafeDebug)]
pub struct CommunicationIdentityClientDeleteUserOptions<'a> {
    /// Options for the method call, such as its [`Context`](azure_core::http::Context).
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for
/// [`get_token_for_teams_user`](crate::CommunicationIdentityClient::get_token_for_teams_user).
#[derive(Clone, Default, SafeDebug)]
pub struct CommunicationIdentityClientGetTokenForTeamsUserOptions<'a> {
    /// Options for the method call, such as its [`Context`](azure_core::http::Context).
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for [`get_user_detail`](crate::CommunicationIdentityClient::get_user_detail).
#[derive(Clone, Default, SafeDebug)]
pub struct CommunicationIdentityClientGetUserDetailOptions<'a> {
    /// Options for the method call, such as its [`Context`](azure_core::http::Context).
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for [`validate_token`](crate::CommunicationIdentityClient::validate_token).
#[derive(Clone, Default, SafeDebug)]
pub struct CommunicationIdentityClientValidateTokenOptions<'a> {
    /// Options for the method call, such as its [`Context`](azure_core::http::Context).
    pub method_options: ClientMethodOptions<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::{headers::Headers, RawResponse, Response, StatusCode};
    use time::macros::datetime;

    #[test]
    fn scopes_use_wire_names() {
        let scopes = vec![
            CommunicationTokenScope::Chat,
            CommunicationTokenScope::VoIP,
            CommunicationTokenScope::ChatJoin,
            CommunicationTokenScope::ChatJoinLimited,
            CommunicationTokenScope::VoIPJoin,
            CommunicationTokenScope::UnknownValue("email".to_owned()),
        ];
        let json = serde_json::to_string(&scopes).unwrap();
        assert_eq!(json, r#"["chat","voip","chat.join","chat.join.limited","voip.join","email"]"#);
        let back: Vec<CommunicationTokenScope> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, scopes);
        assert_eq!(CommunicationTokenScope::from("CHAT".to_owned()).as_str(), "CHAT");
        assert_eq!(CommunicationTokenScope::VoIPJoin.to_string(), "voip.join");
    }

    #[test]
    fn access_token_parses_seven_digit_fractions_and_any_offset() {
        let utc: CommunicationAccessToken = serde_json::from_str(
            r#"{"token":"t","expiresOn":"2022-09-07T14:34:56.2714874+00:00"}"#,
        )
        .unwrap();
        assert_eq!(utc.expires_on, datetime!(2022-09-07 14:34:56.2714874 UTC));
        let offset: CommunicationAccessToken = serde_json::from_str(
            r#"{"token":"t","expiresOn":"2026-07-22T10:00:00.1234567-07:00"}"#,
        )
        .unwrap();
        assert_eq!(offset.expires_on, datetime!(2026-07-22 17:00:00.1234567 UTC));
        let zulu: CommunicationAccessToken =
            serde_json::from_str(r#"{"token":"t","expiresOn":"2023-01-10T17:56:00Z"}"#).unwrap();
        assert_eq!(zulu.expires_on, datetime!(2023-01-10 17:56:00 UTC));
        assert!(serde_json::from_str::<CommunicationAccessToken>(
            r#"{"token":"t","expiresOn":"yesterday"}"#
        )
        .is_err());
    }

    #[test]
    fn access_token_debug_hides_token_and_converts_to_core_token() {
        let token =
            CommunicationAccessToken::new("eyJ.secret.token", datetime!(2030-01-01 0:00 UTC));
        assert!(!format!("{token:?}").contains("eyJ"));
        let core: AccessToken = token.into();
        assert_eq!(core.token.secret(), "eyJ.secret.token");
        assert_eq!(core.expires_on, datetime!(2030-01-01 0:00 UTC));
    }

    #[test]
    fn user_and_token_requires_access_token() {
        let full: CommunicationUserIdentifierAndToken = serde_json::from_str(
            r#"{"identity":{"id":"8:acs:r_u"},"accessToken":{"token":"t","expiresOn":"2023-01-10T17:56:00.7844833+00:00"}}"#,
        )
        .unwrap();
        assert_eq!(full.user.id, "8:acs:r_u");
        assert_eq!(full.access_token.token.secret(), "t");
        let err = serde_json::from_str::<CommunicationUserIdentifierAndToken>(
            r#"{"identity":{"id":"8:acs:r_u"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("accessToken"));
    }

    #[test]
    fn user_detail_reads_optional_fields() {
        let detail: CommunicationUserDetail = serde_json::from_str(
            r#"{"id":"8:acs:r_u","customId":"sally@contoso.com","lastTokenIssuedAt":"2025-02-10T21:39:39.3244584+00:00"}"#,
        )
        .unwrap();
        assert_eq!(detail.user.id, "8:acs:r_u");
        assert_eq!(detail.custom_id.as_deref(), Some("sally@contoso.com"));
        assert_eq!(detail.last_token_issued_at, Some(datetime!(2025-02-10 21:39:39.3244584 UTC)));
        let bare: CommunicationUserDetail = serde_json::from_str(r#"{"id":"8:acs:r_u"}"#).unwrap();
        assert_eq!((bare.custom_id, bare.last_token_issued_at), (None, None));
    }

    #[test]
    fn identity_result_format_extracts_the_user() {
        let raw = RawResponse::from_bytes(
            StatusCode::Created,
            Headers::new(),
            r#"{"identity":{"id":"8:acs:r_u","customId":"c"}}"#,
        );
        let response: Response<CommunicationUserIdentifier, IdentityResultFormat> = raw.into();
        assert_eq!(response.into_model().unwrap().id, "8:acs:r_u");
        let raw = RawResponse::from_bytes(StatusCode::Created, Headers::new(), "{}");
        let response: Response<CommunicationUserIdentifier, IdentityResultFormat> = raw.into();
        assert!(response.into_model().is_err());
    }

    #[test]
    fn teams_options_debug_hides_the_entra_token() {
        let options = GetTokenForTeamsUserOptions::new("eyJ-entra-token", "app", "user");
        let debug = format!("{options:?}");
        assert!(!debug.contains("eyJ"), "{debug}");
    }
}
