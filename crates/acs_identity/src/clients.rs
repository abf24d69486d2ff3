//! The [`CommunicationIdentityClient`] and its options.

use crate::models::{
    CommunicationAccessToken, CommunicationIdentityClientCreateUserAndTokenOptions,
    CommunicationIdentityClientCreateUserOptions, CommunicationIdentityClientDeleteUserOptions,
    CommunicationIdentityClientGetTokenForTeamsUserOptions,
    CommunicationIdentityClientGetTokenOptions, CommunicationIdentityClientGetUserDetailOptions,
    CommunicationIdentityClientRevokeTokensOptions,
    CommunicationIdentityClientValidateTokenOptions, CommunicationTokenScope,
    CommunicationUserDetail, CommunicationUserIdentifierAndToken, GetTokenForTeamsUserOptions,
    IdentityResultFormat, TokenValidation,
};
use acs_common::{
    connection_string::ConnectionString,
    hmac::{CommunicationKeyCredential, HmacAuthenticationPolicy},
    identifier::CommunicationUserIdentifier,
};
use azure_core::{
    credentials::TokenCredential,
    error::{CheckSuccessOptions, Error, ErrorKind},
    fmt::SafeDebug,
    http::{
        headers::{ACCEPT, CONTENT_TYPE},
        policies::{auth::BearerTokenAuthorizationPolicy, Policy},
        ClientOptions, Context, Method, NoFormat, Pipeline, PipelineSendOptions, Request, Response,
        Url,
    },
    time::Duration,
};
use serde::Serialize;
use std::{fmt, sync::Arc};

/// The api-version used when none is configured: the latest stable version.
pub const DEFAULT_API_VERSION: &str = "2026-09-23";

/// The api-versions this client has been built and tested against, oldest first.
///
/// | api-version | adds |
/// |---|---|
/// | `2021-03-07` | create, delete, issue token, revoke tokens (scopes `chat`, `voip`) |
/// | `2022-06-01` | Teams user token exchange |
/// | `2022-10-01` | custom token expiry (`expires_in`) |
/// | `2023-10-01` | scopes `chat.join`, `chat.join.limited`, `voip.join` |
/// | `2025-03-02-preview` | custom ids on create, [`get_user_detail`](CommunicationIdentityClient::get_user_detail), Teams Phone extensibility and Entra user access assignments |
/// | `2025-06-30`, `2026-07-22`, `2026-09-23` | the identity operations of `2023-10-01` and Teams Phone extensibility assignments |
///
/// Other values may be configured; the client then sends them as they are.
pub const SUPPORTED_API_VERSIONS: &[&str] = &[
    "2021-03-07",
    "2022-06-01",
    "2022-10-01",
    "2023-10-01",
    "2025-03-02-preview",
    "2025-06-30",
    "2026-07-22",
    "2026-09-23",
];

/// The Entra ID scope requested for the Identity API.
pub const ENTRA_SCOPE: &str = "https://communication.azure.com//.default";

/// Options for a [`CommunicationIdentityClient`].
#[derive(Clone, SafeDebug)]
pub struct CommunicationIdentityClientOptions {
    /// The api-version to call; defaults to [`DEFAULT_API_VERSION`].
    ///
    /// See [`SUPPORTED_API_VERSIONS`] for the versions this client knows and what each adds.
    #[safe(true)]
    pub api_version: String,
    /// Options for the HTTP pipeline: retry, transport, user agent, per-call and per-try policies.
    pub client_options: ClientOptions,
}

impl Default for CommunicationIdentityClientOptions {
    fn default() -> Self {
        Self {
            api_version: DEFAULT_API_VERSION.to_owned(),
            client_options: ClientOptions::default(),
        }
    }
}

/// A client for the Communication Services Identity API: users and their access tokens.
///
/// Create it with [`from_connection_string`](Self::from_connection_string),
/// [`with_key_credential`](Self::with_key_credential) (access key) or [`new`](Self::new)
/// (Entra ID). The client is cheap to clone and can be shared between tasks.
#[derive(Clone)]
pub struct CommunicationIdentityClient {
    pub(crate) endpoint: Url,
    pub(crate) api_version: String,
    /// `api-version=<api_version>`, form-encoded once: every request URL carries it.
    query: String,
    pub(crate) pipeline: Pipeline,
}

impl fmt::Debug for CommunicationIdentityClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommunicationIdentityClient")
            .field("endpoint", &self.endpoint.as_str())
            .field("api_version", &self.api_version)
            .finish_non_exhaustive()
    }
}

/// Identity API features that not every api-version has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Feature {
    TeamsUserExchange,
    CustomExpiry,
    CustomId,
    GetUserDetail,
    TeamsExtension,
    EntraAccess,
}

/// The known api-versions a feature exists in, as the service's operation table says it:
/// from a version on, or in one preview only.
#[derive(Clone, Copy, Debug)]
enum Availability {
    Since(&'static str),
    Only(&'static str),
}

impl Feature {
    #[cfg(test)]
    pub(crate) const ALL: [Feature; 6] = [
        Feature::TeamsUserExchange,
        Feature::CustomExpiry,
        Feature::CustomId,
        Feature::GetUserDetail,
        Feature::TeamsExtension,
        Feature::EntraAccess,
    ];

    fn availability(self) -> Availability {
        match self {
            Self::TeamsUserExchange => Availability::Since("2022-06-01"),
            Self::CustomExpiry => Availability::Since("2022-10-01"),
            Self::TeamsExtension => Availability::Since("2025-03-02-preview"),
            Self::CustomId | Self::GetUserDetail | Self::EntraAccess => {
                Availability::Only("2025-03-02-preview")
            }
        }
    }

    /// Whether `version` has the feature; `None` for a version this client does not know,
    /// which is passed to the service as it is.
    pub(crate) fn exists_in(self, version: &str) -> Option<bool> {
        let position = |v: &str| SUPPORTED_API_VERSIONS.iter().position(|s| *s == v);
        let at = position(version)?;
        Some(match self.availability() {
            Availability::Since(first) => position(first).is_some_and(|first| at >= first),
            Availability::Only(only) => version == only,
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Self::TeamsUserExchange => {
                "exchanging Teams user tokens needs api-version 2022-06-01 or later"
            }
            Self::CustomExpiry => "a custom token expiry needs api-version 2022-10-01 or later",
            Self::CustomId => "a custom id needs api-version 2025-03-02-preview",
            Self::GetUserDetail => "get_user_detail needs api-version 2025-03-02-preview",
            Self::TeamsExtension => {
                "Teams Phone extensibility assignments need api-version 2025-03-02-preview, 2025-06-30 or later"
            }
            Self::EntraAccess => "Entra user access assignments need api-version 2025-03-02-preview",
        }
    }
}

impl CommunicationIdentityClient {
    /// Creates a client that authenticates with Entra ID.
    ///
    /// Tokens are requested for [`ENTRA_SCOPE`]. Bearer authentication is only allowed over
    /// `https`.
    ///
    /// # Arguments
    ///
    /// * `endpoint` - The resource endpoint, e.g. `https://contoso.communication.azure.com`.
    /// * `credential` - An Entra ID credential, such as one from `azure_identity`.
    /// * `options` - Optional client options.
    ///
    /// # Errors
    ///
    /// Fails when `endpoint` is not an `http` or `https` URL.
    pub fn new(
        endpoint: &str,
        credential: Arc<dyn TokenCredential>,
        options: Option<CommunicationIdentityClientOptions>,
    ) -> azure_core::Result<Self> {
        let policy = BearerTokenAuthorizationPolicy::new(credential, [ENTRA_SCOPE]);
        Self::with_auth_policy(endpoint, Arc::new(policy), options)
    }

    /// Creates a client that signs requests with an access key (HMAC-SHA256).
    ///
    /// # Errors
    ///
    /// Fails when `endpoint` is not an `http` or `https` URL.
    pub fn with_key_credential(
        endpoint: &str,
        credential: CommunicationKeyCredential,
        options: Option<CommunicationIdentityClientOptions>,
    ) -> azure_core::Result<Self> {
        let policy = HmacAuthenticationPolicy::new(credential);
        Self::with_auth_policy(endpoint, Arc::new(policy), options)
    }

    /// Creates a client from a connection string,
    /// `endpoint=https://<resource>.communication.azure.com/;accesskey=<key>`.
    ///
    /// # Errors
    ///
    /// Fails when the connection string is malformed; the error names the problem but never
    /// contains the key.
    pub fn from_connection_string(
        connection_string: &str,
        options: Option<CommunicationIdentityClientOptions>,
    ) -> azure_core::Result<Self> {
        let (endpoint, key) = ConnectionString::parse(connection_string)?.into_parts();
        Self::with_key_credential(endpoint.as_str(), CommunicationKeyCredential::new(key)?, options)
    }

    fn with_auth_policy(
        endpoint: &str,
        auth_policy: Arc<dyn Policy>,
        options: Option<CommunicationIdentityClientOptions>,
    ) -> azure_core::Result<Self> {
        let mut options = options.unwrap_or_default();
        let endpoint = parse_endpoint(endpoint)?;
        if options.client_options.transport.is_none() {
            options.client_options.transport = Some(acs_common::transport::default_transport());
        }
        if options.api_version.trim().is_empty() {
            return Err(Error::with_message(ErrorKind::Other, "api_version must not be empty"));
        }
        let pipeline = Pipeline::new(
            option_env!("CARGO_PKG_NAME"),
            option_env!("CARGO_PKG_VERSION"),
            options.client_options,
            Vec::new(),
            // Per try, so that each retry is signed again.
            vec![auth_policy],
            None,
        );
        let mut with_query = endpoint.clone();
        with_query.query_pairs_mut().append_pair("api-version", &options.api_version);
        let query = with_query.query().unwrap_or_default().to_owned();
        Ok(Self { endpoint, api_version: options.api_version, query, pipeline })
    }

    /// The resource endpoint the client sends requests to.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The api-version the client sends.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// Creates a new user.
    ///
    /// `POST /identities` with body `{}` (or `{"customId": …}`); the service answers `201`.
    /// Read the new user with `.into_model()?`.
    ///
    /// # Errors
    ///
    /// Returns an [`ErrorKind::HttpResponse`] error for service errors. Setting
    /// [`custom_id`](CommunicationIdentityClientCreateUserOptions::custom_id) with a known
    /// api-version other than `2025-03-02-preview` fails before any request is sent.
    #[tracing::instrument(name = "CommunicationIdentityClient::create_user", skip_all, fields(api_version = %self.api_version))]
    pub async fn create_user(
        &self,
        options: Option<CommunicationIdentityClientCreateUserOptions<'_>>,
    ) -> azure_core::Result<Response<CommunicationUserIdentifier, IdentityResultFormat>> {
        let options = options.unwrap_or_default();
        if options.custom_id.is_some() {
            self.require(Feature::CustomId)?;
        }
        let body = CreateIdentityRequest {
            create_token_with_scopes: None,
            expires_in_minutes: None,
            custom_id: options.custom_id.as_deref(),
        };
        let mut request = self.request(Method::Post, &self.path(&[IDENTITIES]));
        set_json(&mut request, &body)?;
        self.send(&options.method_options.context, &mut request, &[201]).await
    }

    /// Creates a new user and issues an access token for it, in a single request.
    ///
    /// `POST /identities` with `createTokenWithScopes`; the service answers `201`.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when `scopes` is empty, when
    /// [`expires_in`](CommunicationIdentityClientCreateUserAndTokenOptions::expires_in) is not a
    /// whole number of minutes between 1 and 24 hours, or when an option needs another
    /// api-version. Service errors are [`ErrorKind::HttpResponse`] errors.
    #[tracing::instrument(name = "CommunicationIdentityClient::create_user_and_token", skip_all, fields(api_version = %self.api_version))]
    pub async fn create_user_and_token(
        &self,
        scopes: &[CommunicationTokenScope],
        options: Option<CommunicationIdentityClientCreateUserAndTokenOptions<'_>>,
    ) -> azure_core::Result<Response<CommunicationUserIdentifierAndToken>> {
        let options = options.unwrap_or_default();
        if scopes.is_empty() {
            return Err(Error::with_message(
                ErrorKind::Other,
                "scopes must not be empty: a token needs at least one scope",
            ));
        }
        let expires_in_minutes = self.expires_in_minutes(options.expires_in)?;
        if options.custom_id.is_some() {
            self.require(Feature::CustomId)?;
        }
        let body = CreateIdentityRequest {
            create_token_with_scopes: Some(scopes),
            expires_in_minutes,
            custom_id: options.custom_id.as_deref(),
        };
        let mut request = self.request(Method::Post, &self.path(&[IDENTITIES]));
        set_json(&mut request, &body)?;
        self.send(&options.method_options.context, &mut request, &[201]).await
    }

    /// Issues a new access token for an existing user.
    ///
    /// `POST /identities/{id}/:issueAccessToken`; the service answers `200`.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when the user id is empty or
    /// [`expires_in`](CommunicationIdentityClientGetTokenOptions::expires_in) is not a whole number
    /// of minutes between 1 and 24 hours. Service errors (for example `401 IdentityNotOwned`) are
    /// [`ErrorKind::HttpResponse`] errors.
    #[tracing::instrument(name = "CommunicationIdentityClient::get_token", skip_all, fields(api_version = %self.api_version))]
    pub async fn get_token(
        &self,
        user: &CommunicationUserIdentifier,
        scopes: &[CommunicationTokenScope],
        options: Option<CommunicationIdentityClientGetTokenOptions<'_>>,
    ) -> azure_core::Result<Response<CommunicationAccessToken>> {
        let options = options.unwrap_or_default();
        let expires_in_minutes = self.expires_in_minutes(options.expires_in)?;
        let id = user_id(user)?;
        let body = IssueAccessTokenRequest { scopes, expires_in_minutes };
        let mut request = self.request(
            Method::Post,
            &self.path(&[
                IDENTITIES,
                PathPart::Parameter(id),
                PathPart::Literal(":issueAccessToken"),
            ]),
        );
        set_json(&mut request, &body)?;
        self.send(&options.method_options.context, &mut request, &[200]).await
    }

    /// Revokes all access tokens issued for a user so far.
    ///
    /// `POST /identities/{id}/:revokeAccessTokens`; the service answers `204`.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when the user id is empty; service errors are
    /// [`ErrorKind::HttpResponse`] errors.
    #[tracing::instrument(name = "CommunicationIdentityClient::revoke_tokens", skip_all, fields(api_version = %self.api_version))]
    pub async fn revoke_tokens(
        &self,
        user: &CommunicationUserIdentifier,
        options: Option<CommunicationIdentityClientRevokeTokensOptions<'_>>,
    ) -> azure_core::Result<Response<(), NoFormat>> {
        let options = options.unwrap_or_default();
        let id = user_id(user)?;
        let mut request = self.request(
            Method::Post,
            &self.path(&[
                IDENTITIES,
                PathPart::Parameter(id),
                PathPart::Literal(":revokeAccessTokens"),
            ]),
        );
        self.send(&options.method_options.context, &mut request, &[204]).await
    }

    /// Deletes a user, revokes all its tokens and deletes its data.
    ///
    /// `DELETE /identities/{id}`; the service answers `204`.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when the user id is empty; service errors are
    /// [`ErrorKind::HttpResponse`] errors.
    #[tracing::instrument(name = "CommunicationIdentityClient::delete_user", skip_all, fields(api_version = %self.api_version))]
    pub async fn delete_user(
        &self,
        user: &CommunicationUserIdentifier,
        options: Option<CommunicationIdentityClientDeleteUserOptions<'_>>,
    ) -> azure_core::Result<Response<(), NoFormat>> {
        let options = options.unwrap_or_default();
        let id = user_id(user)?;
        let mut request =
            self.request(Method::Delete, &self.path(&[IDENTITIES, PathPart::Parameter(id)]));
        self.send(&options.method_options.context, &mut request, &[204]).await
    }

    /// Exchanges an Entra ID access token of a Teams user for a Communication Services token with
    /// the same expiry.
    ///
    /// `POST /teamsUser/:exchangeAccessToken` with `{token, appId, userId}`; the service answers
    /// `200`.
    ///
    /// # Errors
    ///
    /// Fails without sending a request with api-version `2021-03-07`. Service errors (for example
    /// `401 InvalidAccessToken`, `400 ValidationError`) are [`ErrorKind::HttpResponse`] errors.
    #[tracing::instrument(name = "CommunicationIdentityClient::get_token_for_teams_user", skip_all, fields(api_version = %self.api_version))]
    pub async fn get_token_for_teams_user(
        &self,
        parameters: &GetTokenForTeamsUserOptions,
        options: Option<CommunicationIdentityClientGetTokenForTeamsUserOptions<'_>>,
    ) -> azure_core::Result<Response<CommunicationAccessToken>> {
        let options = options.unwrap_or_default();
        self.require(Feature::TeamsUserExchange)?;
        let body = TeamsUserExchangeTokenRequest {
            token: parameters.teams_user_aad_token.secret(),
            app_id: &parameters.client_id,
            user_id: &parameters.user_object_id,
        };
        let mut request = self.request(
            Method::Post,
            &self
                .path(&[PathPart::Literal("teamsUser"), PathPart::Literal(":exchangeAccessToken")]),
        );
        set_json(&mut request, &body)?;
        self.send(&options.method_options.context, &mut request, &[200]).await
    }

    /// Gets the details of a user: its custom id and when a token was last issued.
    ///
    /// `GET /identities/{id}` (api-version `2025-03-02-preview`); the service answers `200`.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when the user id is empty or the client uses a known
    /// api-version other than `2025-03-02-preview`. Service errors are
    /// [`ErrorKind::HttpResponse`] errors.
    #[tracing::instrument(name = "CommunicationIdentityClient::get_user_detail", skip_all, fields(api_version = %self.api_version))]
    pub async fn get_user_detail(
        &self,
        user: &CommunicationUserIdentifier,
        options: Option<CommunicationIdentityClientGetUserDetailOptions<'_>>,
    ) -> azure_core::Result<Response<CommunicationUserDetail>> {
        let options = options.unwrap_or_default();
        self.require(Feature::GetUserDetail)?;
        let id = user_id(user)?;
        let mut request =
            self.request(Method::Get, &self.path(&[IDENTITIES, PathPart::Parameter(id)]));
        self.send(&options.method_options.context, &mut request, &[200]).await
    }

    /// Asks the service whether an access token is valid.
    ///
    /// `POST /accessTokens/:validate` with `{"token": …}`; the service answers `200` with its
    /// verdict, for valid and invalid tokens alike.
    ///
    /// **An acs-identity extension:** the self-hosted acs-identity service serves this operation
    /// for chat and calling servers; Azure Communication Services has no such operation, so
    /// against Azure the call fails.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when `token` is empty. Service errors (for example
    /// `401 Denied` for a wrong access key) are [`ErrorKind::HttpResponse`] errors.
    #[tracing::instrument(name = "CommunicationIdentityClient::validate_token", skip_all, fields(api_version = %self.api_version))]
    pub async fn validate_token(
        &self,
        token: &str,
        options: Option<CommunicationIdentityClientValidateTokenOptions<'_>>,
    ) -> azure_core::Result<Response<TokenValidation>> {
        let options = options.unwrap_or_default();
        if token.is_empty() {
            return Err(Error::with_message(ErrorKind::Other, "the token must not be empty"));
        }
        let mut request = self.request(
            Method::Post,
            &self.path(&[PathPart::Literal("accessTokens"), PathPart::Literal(":validate")]),
        );
        set_json(&mut request, &ValidateTokenRequest { token })?;
        self.send(&options.method_options.context, &mut request, &[200]).await
    }

    fn require(&self, feature: Feature) -> azure_core::Result<()> {
        if feature.exists_in(&self.api_version) == Some(false) {
            return Err(Error::with_message(
                ErrorKind::Other,
                format!(
                    "{}, but the client uses {}; set CommunicationIdentityClientOptions::api_version",
                    feature.describe(),
                    self.api_version
                ),
            ));
        }
        Ok(())
    }

    fn expires_in_minutes(&self, expires_in: Option<Duration>) -> azure_core::Result<Option<i32>> {
        let Some(expires_in) = expires_in else {
            return Ok(None);
        };
        self.require(Feature::CustomExpiry)?;
        let minutes = expires_in.whole_minutes();
        let whole = expires_in == Duration::minutes(minutes);
        match i32::try_from(minutes) {
            Ok(minutes @ 60..=1440) if whole => Ok(Some(minutes)),
            _ => Err(Error::with_message(
                ErrorKind::Other,
                format!(
                    "expires_in is out of the permitted bounds [1, 24] hours (60 to 1440 whole minutes); got {expires_in}"
                ),
            )),
        }
    }

    /// The endpoint path followed by `parts`.
    fn path(&self, parts: &[PathPart<'_>]) -> String {
        let mut path = self.endpoint.path().trim_end_matches('/').to_owned();
        for part in parts {
            path.push('/');
            match part {
                PathPart::Literal(literal) => path.push_str(literal),
                PathPart::Parameter(value) => encode_path_segment(value, &mut path),
            }
        }
        path
    }

    fn request(&self, method: Method, path: &str) -> Request {
        let mut url = self.endpoint.clone();
        url.set_path(path);
        url.set_query(Some(&self.query));
        let mut request = Request::new(url, method);
        request.insert_header(ACCEPT, "application/json");
        request
    }

    async fn send<T, F>(
        &self,
        context: &Context<'_>,
        request: &mut Request,
        success_codes: &'static [u16],
    ) -> azure_core::Result<Response<T, F>> {
        let response =
            self.pipeline.send(context, request, Some(succeeding_on(success_codes))).await?;
        Ok(response.into())
    }
}

/// Pipeline options that treat exactly `success_codes` as success.
fn succeeding_on(success_codes: &'static [u16]) -> PipelineSendOptions {
    PipelineSendOptions {
        check_success: CheckSuccessOptions { success_codes },
        ..Default::default()
    }
}

/// A segment of a request path.
#[derive(Clone, Copy, Debug)]
enum PathPart<'a> {
    /// A fixed segment from the API definition, such as `identities` or `:issueAccessToken`.
    Literal(&'static str),
    /// A path parameter, percent-encoded so that `:` becomes `%3A`.
    Parameter(&'a str),
}

const IDENTITIES: PathPart<'static> = PathPart::Literal("identities");

fn parse_endpoint(endpoint: &str) -> azure_core::Result<Url> {
    let url = Url::parse(endpoint).map_err(|e| {
        Error::with_message(
            ErrorKind::Other,
            format!("endpoint '{endpoint}' is not a valid URL: {e}"),
        )
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(Error::with_message(
            ErrorKind::Other,
            format!("endpoint '{endpoint}' must use http or https"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::with_message(
            ErrorKind::Other,
            format!("endpoint '{endpoint}' has no host"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::with_message(
            ErrorKind::Other,
            format!("endpoint '{endpoint}' must not have a query or fragment"),
        ));
    }
    Ok(url)
}

fn user_id(user: &CommunicationUserIdentifier) -> azure_core::Result<&str> {
    if user.id.is_empty() {
        return Err(Error::with_message(ErrorKind::Other, "the user id must not be empty"));
    }
    Ok(&user.id)
}

/// Percent-encodes everything except RFC 3986 unreserved characters, so `:` becomes `%3A`.
fn encode_path_segment(segment: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
    }
}

fn set_json<T: Serialize>(request: &mut Request, body: &T) -> azure_core::Result<()> {
    request.insert_header(CONTENT_TYPE, "application/json");
    request.set_body(azure_core::json::to_json(body)?);
    Ok(())
}

/// Wire model `CommunicationIdentityCreateRequest`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateIdentityRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    create_token_with_scopes: Option<&'a [CommunicationTokenScope]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in_minutes: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_id: Option<&'a str>,
}

/// Wire model `CommunicationIdentityAccessTokenRequest`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IssueAccessTokenRequest<'a> {
    scopes: &'a [CommunicationTokenScope],
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in_minutes: Option<i32>,
}

/// Wire model `TeamsUserExchangeTokenRequest`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TeamsUserExchangeTokenRequest<'a> {
    token: &'a str,
    app_id: &'a str,
    user_id: &'a str,
}

/// Wire model of the body of `POST /accessTokens/:validate` (acs-identity extension).
#[derive(Serialize)]
struct ValidateTokenRequest<'a> {
    token: &'a str,
}

mod assignments;
mod paging;
#[cfg(test)]
mod tests;
mod users;
