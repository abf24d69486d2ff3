//! A [`CommunicationTokenCredential`] that exchanges the user's Entra ID token for a
//! Communication Services token.
//!
//! An application whose users sign in with Entra ID gets their Entra tokens from a
//! [`TokenCredential`] (for example one of `azure_identity`) and exchanges each at the resource:
//!
//! - scopes under `https://communication.azure.com/clients/` (default
//!   [`DEFAULT_ENTRA_SCOPE`]): Entra user access,
//!   `POST /access/entra/:exchangeAccessToken?api-version=2025-03-02-preview`, for users with an
//!   Entra assignment;
//! - scopes under `https://auth.msft.communication.azure.com/` (or `.azure.us/`), such as
//!   `https://auth.msft.communication.azure.com/TeamsExtension.ManageCalls`: Teams Phone
//!   extensibility, `POST /access/teamsExtension/:exchangeAccessToken?api-version=2025-06-30`, for
//!   assigned Teams users and resource accounts.
//!
//! The request carries the Entra token as `Authorization: Bearer` and the body `{}`; the answer
//! is the Communication Services identity and token. Like the official SDKs, the credential
//! exchanges again only when the Entra credential hands out a different token or the
//! Communication Services token has expired.
//!
//! ```no_run
//! use acs_common::entra::EntraCommunicationTokenCredentialOptions;
//! use acs_common::CommunicationTokenCredential;
//! # async fn example(
//! #     entra_credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>,
//! # ) -> azure_core::Result<()> {
//! let options = EntraCommunicationTokenCredentialOptions::new(
//!     "https://contoso.communication.azure.com",
//!     entra_credential,
//! );
//! let credential = CommunicationTokenCredential::with_entra_options(options)?;
//! let token = credential.get_token().await?;
//! println!("token expires on {}", token.expires_on);
//! # Ok(())
//! # }
//! ```

use crate::clock::{Clock, SystemClock};
use crate::credential::TokenRefresher;
use crate::credential::{CommunicationTokenCredential, CommunicationTokenRefreshOptions};
use async_trait::async_trait;
use azure_core::{
    credentials::{AccessToken, Secret, TokenCredential},
    error::{CheckSuccessOptions, Error, ErrorKind},
    http::{
        headers::{ACCEPT, AUTHORIZATION, CONTENT_TYPE},
        ClientOptions, Context, Method, Pipeline, PipelineSendOptions, Request, Url,
    },
};
use std::{fmt, sync::Arc};

/// The default scope: Entra user access to Communication Services.
pub const DEFAULT_ENTRA_SCOPE: &str = "https://communication.azure.com/clients/.default";

/// Scopes under this prefix exchange at `/access/entra/:exchangeAccessToken`.
pub const ENTRA_SCOPE_PREFIX: &str = "https://communication.azure.com/clients/";

/// Scopes under these prefixes exchange at `/access/teamsExtension/:exchangeAccessToken`.
pub const TEAMS_EXTENSION_SCOPE_PREFIXES: [&str; 2] =
    ["https://auth.msft.communication.azure.com/", "https://auth.msft.communication.azure.us/"];

/// The api-version of the Entra user access exchange.
pub const ENTRA_EXCHANGE_API_VERSION: &str = "2025-03-02-preview";

/// The api-version of the Teams Phone extensibility exchange.
pub const TEAMS_EXTENSION_EXCHANGE_API_VERSION: &str = "2025-06-30";

/// How to build a [`CommunicationTokenCredential`] that exchanges Entra ID tokens.
#[derive(Clone)]
#[non_exhaustive]
pub struct EntraCommunicationTokenCredentialOptions {
    /// The Communication Services resource endpoint, e.g. `https://contoso.communication.azure.com`.
    pub resource_endpoint: String,
    /// Where the user's Entra tokens come from.
    pub token_credential: Arc<dyn TokenCredential>,
    /// The scopes to request from `token_credential`; all under one of the prefixes above.
    /// Defaults to [`DEFAULT_ENTRA_SCOPE`].
    pub scopes: Vec<String>,
    /// Options for the exchange requests' HTTP pipeline: retry, transport, user agent.
    pub client_options: ClientOptions,
}

impl EntraCommunicationTokenCredentialOptions {
    /// Options for `resource_endpoint` with the default scope.
    pub fn new(
        resource_endpoint: impl Into<String>,
        token_credential: Arc<dyn TokenCredential>,
    ) -> Self {
        Self {
            resource_endpoint: resource_endpoint.into(),
            token_credential,
            scopes: vec![DEFAULT_ENTRA_SCOPE.to_owned()],
            client_options: ClientOptions::default(),
        }
    }

    /// Requests `scopes` instead of the default.
    pub fn with_scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Uses `client_options` for the exchange requests.
    pub fn with_client_options(mut self, client_options: ClientOptions) -> Self {
        self.client_options = client_options;
        self
    }
}

impl fmt::Debug for EntraCommunicationTokenCredentialOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraCommunicationTokenCredentialOptions")
            .field("resource_endpoint", &self.resource_endpoint)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl CommunicationTokenCredential {
    /// Creates a credential whose tokens come from exchanging the user's Entra ID tokens; see
    /// [the module documentation](crate::entra).
    ///
    /// # Errors
    ///
    /// Fails when the endpoint is not an `https` URL (bearer tokens are only sent over HTTPS), or
    /// when the scopes are empty or not all under one of the known prefixes.
    pub fn with_entra_options(
        options: EntraCommunicationTokenCredentialOptions,
    ) -> azure_core::Result<Self> {
        let exchanger = EntraTokenExchanger::new(options)?;
        Self::with_refresh_options(CommunicationTokenRefreshOptions::with_refresher(Arc::new(
            exchanger,
        )))
    }
}

/// Which exchange the scopes call for.
fn exchange_route(scopes: &[String]) -> azure_core::Result<(&'static str, &'static str)> {
    let entra = |s: &String| s.starts_with(ENTRA_SCOPE_PREFIX);
    let teams = |s: &String| TEAMS_EXTENSION_SCOPE_PREFIXES.iter().any(|p| s.starts_with(p));
    if !scopes.is_empty() && scopes.iter().all(entra) {
        Ok(("access/entra/:exchangeAccessToken", ENTRA_EXCHANGE_API_VERSION))
    } else if !scopes.is_empty() && scopes.iter().all(teams) {
        Ok(("access/teamsExtension/:exchangeAccessToken", TEAMS_EXTENSION_EXCHANGE_API_VERSION))
    } else {
        Err(Error::with_message(
            ErrorKind::Other,
            format!(
                "scopes must all start with {ENTRA_SCOPE_PREFIX} or all with one of {}; got {scopes:?}",
                TEAMS_EXTENSION_SCOPE_PREFIXES.join(", ")
            ),
        ))
    }
}

/// The [`TokenRefresher`] behind [`CommunicationTokenCredential::with_entra_options`].
struct EntraTokenExchanger {
    pipeline: Pipeline,
    url: Url,
    credential: Arc<dyn TokenCredential>,
    scopes: Vec<String>,
    /// The last Entra token exchanged and what it was exchanged for.
    last: tokio::sync::Mutex<Option<(Secret, AccessToken)>>,
    clock: Arc<dyn Clock>,
}

impl EntraTokenExchanger {
    fn new(mut options: EntraCommunicationTokenCredentialOptions) -> azure_core::Result<Self> {
        if options.client_options.transport.is_none() {
            options.client_options.transport = Some(crate::transport::default_transport());
        }
        let (path, api_version) = exchange_route(&options.scopes)?;
        let mut url = Url::parse(&options.resource_endpoint).map_err(|e| {
            Error::with_message(
                ErrorKind::Other,
                format!(
                    "resource endpoint '{}' is not a valid URL: {e}",
                    options.resource_endpoint
                ),
            )
        })?;
        if url.scheme() != "https" {
            return Err(Error::with_message(
                ErrorKind::Other,
                format!(
                    "resource endpoint '{}' must be an https URL: the Entra token is a bearer token",
                    options.resource_endpoint
                ),
            ));
        }
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/{path}"));
        url.query_pairs_mut().clear().append_pair("api-version", api_version);
        let pipeline = Pipeline::new(
            option_env!("CARGO_PKG_NAME"),
            option_env!("CARGO_PKG_VERSION"),
            options.client_options,
            Vec::new(),
            Vec::new(),
            None,
        );
        Ok(Self {
            pipeline,
            url,
            credential: options.token_credential,
            scopes: options.scopes,
            last: tokio::sync::Mutex::new(None),
            clock: Arc::new(SystemClock),
        })
    }

    async fn exchange(&self, entra_token: &Secret) -> azure_core::Result<AccessToken> {
        let mut request = Request::new(self.url.clone(), Method::Post);
        request.insert_header(ACCEPT, "application/json");
        request.insert_header(CONTENT_TYPE, "application/json");
        request.insert_header(AUTHORIZATION, format!("Bearer {}", entra_token.secret()));
        request.set_body("{}");
        let options = PipelineSendOptions {
            check_success: CheckSuccessOptions { success_codes: &[200] },
            ..Default::default()
        };
        let response = self.pipeline.send(&Context::new(), &mut request, Some(options)).await?;
        let body: serde_json::Value = response.into_body().json()?;
        let invalid = |why: &str| {
            Error::with_message(
                ErrorKind::DataConversion,
                format!("the token exchange answer is not valid: {why}"),
            )
        };
        let token = body
            .pointer("/accessToken/token")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| invalid("no accessToken.token"))?;
        let expires_on = body
            .pointer("/accessToken/expiresOn")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| invalid("no accessToken.expiresOn"))?;
        let expires_on = azure_core::time::parse_rfc3339(expires_on)
            .map_err(|_| invalid("accessToken.expiresOn is not an RFC 3339 time"))?;
        Ok(AccessToken::new(Secret::new(token.to_owned()), expires_on))
    }
}

#[async_trait]
impl TokenRefresher for EntraTokenExchanger {
    async fn refresh(&self) -> azure_core::Result<AccessToken> {
        let scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        let entra = self.credential.get_token(&scopes, None).await?;
        let mut last = self.last.lock().await;
        if let Some((exchanged_for, token)) = last.as_ref() {
            if exchanged_for.secret() == entra.token.secret() && token.expires_on > self.clock.now()
            {
                return Ok(token.clone());
            }
        }
        // The credential refuses an expired answer (`EXPIRED_REFRESHED_TOKEN_MESSAGE`); kept
        // here, it is exchanged again on the next refresh.
        let token = self.exchange(&entra.token).await?;
        *last = Some((entra.token, token.clone()));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn scopes_choose_the_exchange() {
        assert_eq!(
            exchange_route(&scopes(&[DEFAULT_ENTRA_SCOPE])).unwrap(),
            ("access/entra/:exchangeAccessToken", "2025-03-02-preview")
        );
        assert_eq!(
            exchange_route(&scopes(&[
                "https://auth.msft.communication.azure.com/TeamsExtension.ManageCalls",
                "https://auth.msft.communication.azure.us/TeamsExtension.ManageCalls",
            ]))
            .unwrap(),
            ("access/teamsExtension/:exchangeAccessToken", "2025-06-30")
        );
        for bad in [
            scopes(&[]),
            scopes(&["https://communication.azure.com//.default"]),
            scopes(&[DEFAULT_ENTRA_SCOPE, "https://auth.msft.communication.azure.com/x"]),
        ] {
            let e = exchange_route(&bad).unwrap_err();
            assert!(e.to_string().contains(ENTRA_SCOPE_PREFIX), "{e}");
        }
    }

    #[derive(Debug)]
    struct NoCredential;

    #[async_trait]
    impl TokenCredential for NoCredential {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            Err(Error::with_message(ErrorKind::Credential, "no token"))
        }
    }

    #[test]
    fn endpoint_must_be_https() {
        let new = |endpoint: &str| {
            EntraTokenExchanger::new(EntraCommunicationTokenCredentialOptions::new(
                endpoint,
                Arc::new(NoCredential),
            ))
        };
        let ok = new("https://contoso.communication.azure.com/").unwrap();
        assert_eq!(
            ok.url.as_str(),
            "https://contoso.communication.azure.com/access/entra/:exchangeAccessToken?api-version=2025-03-02-preview"
        );
        assert!(new("https://127.0.0.1:8443").is_ok());
        for bad in ["http://contoso.communication.azure.com", "http://127.0.0.1:8080", "not a url"]
        {
            assert!(new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_shows_endpoint_and_scopes_only() {
        let options = EntraCommunicationTokenCredentialOptions::new(
            "https://contoso.communication.azure.com",
            Arc::new(NoCredential),
        );
        let debug = format!("{options:?}");
        assert!(debug.contains("contoso") && debug.contains(DEFAULT_ENTRA_SCOPE), "{debug}");
    }
}
