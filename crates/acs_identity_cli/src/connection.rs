//! The flags every client command shares, and the [`CommunicationIdentityClient`] built from them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use acs_identity::acs_common::transport::{self, Http1Transport, Http1TransportOptions};
use acs_identity::clients::DEFAULT_API_VERSION;
use acs_identity::{CommunicationIdentityClient, CommunicationIdentityClientOptions};
use anyhow::Context as _;
use azure_core::error::ErrorKind;
use azure_core::http::{ExponentialRetryOptions, RetryOptions, Transport};
use azure_core::time::Duration;

use crate::output::Output;

/// The environment variable the official SDK samples read the connection string from.
pub(crate) const CONNECTION_STRING_ENV: &str = "COMMUNICATION_SERVICES_CONNECTION_STRING";

/// The api-version that has custom ids and `GET /identities/{id}`.
pub(crate) const PREVIEW_API_VERSION: &str = "2025-03-02-preview";

/// Environment variables naming a PEM file of extra trusted roots, in order of preference.
const CA_FILE_ENVS: [&str; 2] = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"];

/// Flags of the commands that talk to a running service. `Debug` leaves out the connection
/// string, which holds the access key.
#[derive(clap::Args)]
pub(crate) struct ClientArgs {
    /// Connection string of the resource, `endpoint=https://…/;accesskey=…`
    /// (`acs-identity keys list` prints it).
    #[arg(
        long,
        global = true,
        env = CONNECTION_STRING_ENV,
        hide_env_values = true,
        value_name = "STRING"
    )]
    pub(crate) connection_string: Option<String>,
    /// Also trust the root certificates in this PEM file, such as the service's development CA
    /// (<data dir>/tls/ca.pem) [env: SSL_CERT_FILE, REQUESTS_CA_BUNDLE].
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// The api-version to call [default: 2026-09-23, or 2025-03-02-preview for `user show` and
    /// `--custom-id`].
    #[arg(long, global = true, value_name = "VERSION")]
    pub(crate) api_version: Option<String>,
    /// Output format: a table for people, JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub(crate) output: Output,
}

impl std::fmt::Debug for ClientArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientArgs")
            .field("ca_file", &self.ca_file)
            .field("api_version", &self.api_version)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

/// Which api-version a command needs when `--api-version` is not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Needs {
    /// The client's default, the latest stable version.
    Stable,
    /// `2025-03-02-preview`, for custom ids and user details.
    Preview,
}

impl ClientArgs {
    /// Builds the client: parses the connection string and sets up TLS and retries.
    pub(crate) fn client(&self, needs: Needs) -> anyhow::Result<CommunicationIdentityClient> {
        let Some(connection_string) = self.connection_string.as_deref() else {
            anyhow::bail!(
                "no connection string: pass --connection-string or set {CONNECTION_STRING_ENV} \
                 (`acs-identity keys list` prints it)"
            );
        };
        let api_version = match (&self.api_version, needs) {
            (Some(version), _) => version.clone(),
            (None, Needs::Stable) => DEFAULT_API_VERSION.to_owned(),
            (None, Needs::Preview) => PREVIEW_API_VERSION.to_owned(),
        };
        let mut options = CommunicationIdentityClientOptions { api_version, ..Default::default() };
        // A person is waiting: give up on an unreachable service after a few seconds.
        options.client_options.retry = RetryOptions::exponential(ExponentialRetryOptions {
            max_retries: 3,
            max_total_elapsed: Duration::seconds(15),
            ..Default::default()
        });
        if let Some(ca_file) = self.ca_file() {
            options.client_options.transport = Some(transport_trusting(&ca_file)?);
        }
        // The parser's messages never contain the key; the string itself is never echoed.
        CommunicationIdentityClient::from_connection_string(connection_string, Some(options))
            .map_err(|e| {
                let message = e.to_string();
                if message.starts_with("invalid connection string") {
                    anyhow::anyhow!(message)
                } else {
                    anyhow::anyhow!("invalid connection string: {message}")
                }
            })
    }

    /// `--ca-file`, else the first of `SSL_CERT_FILE` and `REQUESTS_CA_BUNDLE` that is set.
    fn ca_file(&self) -> Option<PathBuf> {
        self.ca_file.clone().or_else(|| {
            CA_FILE_ENVS
                .iter()
                .filter_map(std::env::var_os)
                .find(|value| !value.is_empty())
                .map(PathBuf::from)
        })
    }
}

/// The client's default transport, also trusting the roots in `ca_file`: an [`Http1Transport`],
/// or `azure_core`'s `reqwest` transport when a proxy is configured.
fn transport_trusting(ca_file: &Path) -> anyhow::Result<Transport> {
    let pem = std::fs::read(ca_file)
        .with_context(|| format!("cannot read the CA file {}", ca_file.display()))?;
    if !transport::proxy_configured() {
        let mut options = Http1TransportOptions::default();
        options
            .add_root_certificates_pem(&pem)
            .map_err(|e| anyhow::anyhow!("{}: {e}", ca_file.display()))?;
        return Ok(Transport::new(Arc::new(Http1Transport::with_options(options))));
    }
    let roots = azure_core_reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("{} is not a PEM certificate file", ca_file.display()))?;
    if roots.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", ca_file.display());
    }
    let http = azure_core_reqwest::Client::builder()
        .connect_timeout(StdDuration::from_secs(20))
        .read_timeout(StdDuration::from_secs(60))
        .redirect(azure_core_reqwest::redirect::Policy::none())
        .tls_certs_merge(roots)
        .build()
        .context("cannot set up TLS")?;
    Ok(Transport::new(Arc::new(http)))
}

/// A failed call, shown as `<status> <ACS code>: <message>`.
#[derive(Debug)]
pub(crate) struct ServiceError {
    status: u16,
    code: Option<String>,
    message: String,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} {code}: {}", self.status, self.message),
            None => write!(f, "{}: {}", self.status, self.message),
        }
    }
}

impl std::error::Error for ServiceError {}

/// The model of a client call's answer, or the CLI's error for it ([`api_error`]).
pub(crate) fn model<T, F>(
    answer: azure_core::Result<azure_core::http::Response<T, F>>,
    doing: &str,
) -> anyhow::Result<T>
where
    T: azure_core::http::DeserializeWith<F>,
    F: azure_core::http::Format,
{
    answer.and_then(|r| r.into_model()).map_err(|e| api_error(e, doing))
}

/// Turns a client error into the CLI's error: service answers as [`ServiceError`], anything else
/// (connection, TLS, client-side validation) with what was being done.
pub(crate) fn api_error(error: azure_core::Error, doing: &str) -> anyhow::Error {
    match error.kind() {
        ErrorKind::HttpResponse { status, error_code, .. } => ServiceError {
            status: u16::from(*status),
            code: error_code.clone(),
            message: error.to_string(),
        }
        .into(),
        _ if causes(&error).any(|cause| {
            let text = cause.to_string();
            text.contains("UnknownIssuer") || text.contains("is not trusted")
        }) =>
        {
            // The innermost cause says which certificate and why; the rest is the pipeline's.
            let reason = causes(&error).last().map(ToString::to_string).unwrap_or_default();
            anyhow::anyhow!(
                "cannot {doing}: {reason} (pass --ca-file <data dir>/tls/ca.pem to trust the \
                 development CA)"
            )
        }
        ErrorKind::Other | ErrorKind::DataConversion => anyhow::anyhow!("{error}"),
        _ => anyhow::Error::new(error).context(format!("cannot {doing}")),
    }
}

/// `error` and its sources, outermost first.
fn causes(error: &azure_core::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |cause| cause.source())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(connection_string: Option<&str>) -> ClientArgs {
        ClientArgs {
            connection_string: connection_string.map(str::to_owned),
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            api_version: None,
            output: Output::Table,
        }
    }

    #[test]
    fn a_bad_connection_string_is_named_without_its_key() {
        let mut a = args(Some("endpoint=https://127.0.0.1:1/;accesskey=c2VjcmV0LWtleQ=="));
        a.ca_file = None;
        // Valid: a client is built without any request.
        assert!(a.client(Needs::Stable).is_ok());
        a.connection_string = Some("endpoint=ftp://x/;accesskey=c2VjcmV0LWtleQ==".to_owned());
        let error = format!("{:#}", a.client(Needs::Stable).unwrap_err());
        assert!(error.starts_with("invalid connection string"), "{error}");
        assert!(!error.contains("c2VjcmV0"), "{error}");
        a.connection_string = Some("c2VjcmV0LWtleQ==".to_owned());
        let error = format!("{:#}", a.client(Needs::Stable).unwrap_err());
        assert!(!error.contains("c2VjcmV0"), "{error}");
        a.connection_string = None;
        let error = a.client(Needs::Stable).unwrap_err().to_string();
        assert!(error.contains(CONNECTION_STRING_ENV), "{error}");
    }

    #[test]
    fn api_version_follows_the_command_unless_given() {
        let mut a = args(Some("endpoint=https://127.0.0.1:1/;accesskey=AAAA"));
        a.ca_file = None;
        assert_eq!(a.client(Needs::Stable).unwrap().api_version(), DEFAULT_API_VERSION);
        assert_eq!(a.client(Needs::Preview).unwrap().api_version(), PREVIEW_API_VERSION);
        a.api_version = Some("2023-10-01".to_owned());
        assert_eq!(a.client(Needs::Preview).unwrap().api_version(), "2023-10-01");
    }

    #[test]
    fn a_missing_ca_file_is_an_error_naming_it() {
        let a = args(Some("endpoint=https://127.0.0.1:1/;accesskey=AAAA"));
        let error = format!("{:#}", a.client(Needs::Stable).unwrap_err());
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn service_errors_show_status_code_and_message() {
        let error = ServiceError {
            status: 404,
            code: Some("IdentityNotFound".to_owned()),
            message: "The identity has been deleted.".to_owned(),
        };
        assert_eq!(error.to_string(), "404 IdentityNotFound: The identity has been deleted.");
    }
}
