#![doc = include_str!("../README.md")]

mod clock;
mod faults;
mod in_process;

use std::net::SocketAddr;
use std::sync::Arc;

use acs_identity::acs_common::transport::{Http1Transport, Http1TransportOptions};
use acs_identity::{CommunicationIdentityClient, CommunicationIdentityClientOptions};
use acs_identity_core::hmac::KeyName;
use acs_identity_server::audit::AuditSink;
use acs_identity_server::entra::EntraTrust;
use acs_identity_server::serve::{open_store, Server};
use acs_identity_server::state::{HttpSettings, StateParts};
use acs_identity_server::telemetry::Metrics;
use acs_identity_server::{AppState, Config};
use acs_identity_store::AnyStore;
use anyhow::Context as _;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::Router;
use azure_core::http::{HttpClient, Transport};

pub use acs_identity_server::dev::{DEV_PRIMARY_KEY, DEV_RESOURCE_ID, DEV_SECONDARY_KEY};
pub use acs_identity_server::operation::Operation;
pub use in_process::InProcessClient;

use clock::EmulatorClock;
use faults::Faults;

/// The endpoint of an in-process emulator: a reserved name that never resolves, so a client
/// with any other transport fails at once instead of reaching something else.
pub const IN_PROCESS_ENDPOINT: &str = "https://acs-identity-emulator.invalid";

/// The acs-identity service, in memory, for one test: see the [crate docs](crate).
#[derive(Debug)]
pub struct Emulator {
    state: AppState,
    clock: Arc<EmulatorClock>,
    faults: Arc<Faults>,
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Socket { server: Option<Box<Server>>, endpoint: String, ca_pem: String },
    InProcess { client: InProcessClient, store: AnyStore },
}

/// Options of an [`Emulator`]; from [`Emulator::builder`].
#[derive(Clone, Debug)]
pub struct EmulatorBuilder {
    https: bool,
    dev_key: bool,
    skip_api_version_check: bool,
    in_process: bool,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        EmulatorBuilder {
            https: true,
            dev_key: false,
            skip_api_version_check: false,
            in_process: false,
        }
    }
}

impl EmulatorBuilder {
    /// Serve HTTPS with a development CA of its own (the default), or plain HTTP.
    pub fn https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// Use the well-known development resource and keys ([`DEV_PRIMARY_KEY`]) instead of
    /// random ones. Off by default.
    pub fn dev_key(mut self, dev_key: bool) -> Self {
        self.dev_key = dev_key;
        self
    }

    /// Serve an unknown `api-version` as the newest one the service knows. Off by default.
    pub fn skip_api_version_check(mut self, skip: bool) -> Self {
        self.skip_api_version_check = skip;
        self
    }

    /// No socket at all: the emulator's client hands each request to the service in this
    /// process (see [`Emulator::in_process`]). Off by default.
    pub fn in_process(mut self, in_process: bool) -> Self {
        self.in_process = in_process;
        self
    }

    /// Starts the emulator.
    ///
    /// # Errors
    ///
    /// When the in-memory store, the development CA or the listener cannot be set up.
    pub async fn build(self) -> anyhow::Result<Emulator> {
        let clock = Arc::new(EmulatorClock::default());
        let faults = Arc::new(Faults::default());
        let config = Config {
            in_memory: true,
            dev: self.dev_key,
            skip_api_version_check: self.skip_api_version_check,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_listen: (!self.https).then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            cors_allowed_origins: Vec::new(),
            ..Config::default()
        };
        let mut http = HttpSettings::from_config(&config);
        // Clients sign with the real time; the emulator's clock may have been moved.
        http.credentials_use_system_clock = true;
        let inject = from_fn_with_state(faults.clone(), faults::inject);
        if self.in_process {
            let metrics = Metrics::new(config.metrics);
            let (store, _) = open_store(&config, clock.as_ref(), &metrics).await?;
            let state = AppState::bootstrap(StateParts {
                store: store.shared(),
                clock: clock.clone(),
                data_location: config.data_location.clone(),
                alg: config.signing_alg,
                http,
                entra: EntraTrust::load(&config.entra).await?,
                audit: AuditSink::default(),
                metrics,
            })
            .await?;
            let router: Router = acs_identity_server::app(state.clone()).layer(inject);
            let client = InProcessClient::new(router);
            return Ok(Emulator { state, clock, faults, mode: Mode::InProcess { client, store } });
        }
        let server =
            Server::start_with(&config, clock.clone(), http, |router| router.layer(inject)).await?;
        let ca_path = server.ca_path().context("the emulator serves a development CA")?;
        let ca_pem = std::fs::read_to_string(ca_path).context("cannot read the development CA")?;
        let endpoint = match server.http_endpoint() {
            Some(http) if !self.https => http,
            _ => server.endpoint(),
        };
        let state = server.state().clone();
        Ok(Emulator {
            state,
            clock,
            faults,
            mode: Mode::Socket { server: Some(Box::new(server)), endpoint, ca_pem },
        })
    }
}

impl Emulator {
    /// Starts an emulator on `127.0.0.1:0` over HTTPS with a random resource and keys.
    ///
    /// # Errors
    ///
    /// See [`EmulatorBuilder::build`].
    pub async fn start() -> anyhow::Result<Emulator> {
        Self::builder().build().await
    }

    /// Starts an emulator without a socket: [`Emulator::client`] hands each request to the
    /// service's router in this process.
    ///
    /// # Errors
    ///
    /// See [`EmulatorBuilder::build`].
    pub async fn in_process() -> anyhow::Result<Emulator> {
        Self::builder().in_process(true).build().await
    }

    /// Options for an emulator.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// `https://127.0.0.1:<port>` (`http://` with `.https(false)`), or
    /// [`IN_PROCESS_ENDPOINT`] in process.
    pub fn endpoint(&self) -> &str {
        match &self.mode {
            Mode::Socket { endpoint, .. } => endpoint,
            Mode::InProcess { .. } => IN_PROCESS_ENDPOINT,
        }
    }

    /// `endpoint=<endpoint>/;accesskey=<primary key>`.
    pub fn connection_string(&self) -> String {
        self.state.connection_string(self.endpoint(), KeyName::Primary)
    }

    /// The emulator's development CA (PEM), which its HTTPS certificate chains to; `None` in
    /// process.
    pub fn ca_pem(&self) -> Option<&str> {
        match &self.mode {
            Mode::Socket { ca_pem, .. } => Some(ca_pem),
            Mode::InProcess { .. } => None,
        }
    }

    /// The HTTP client that reaches this emulator: over the socket, the client library's
    /// default transport trusting [`Emulator::ca_pem`]; in process, an [`InProcessClient`].
    pub fn http_client(&self) -> Arc<dyn HttpClient> {
        match &self.mode {
            Mode::Socket { ca_pem, .. } => {
                let mut options = Http1TransportOptions::default();
                options
                    .add_root_certificates_pem(ca_pem.as_bytes())
                    .unwrap_or_else(|e| unreachable!("the emulator's own CA is valid PEM: {e}"));
                Arc::new(Http1Transport::with_options(options))
            }
            Mode::InProcess { client, .. } => Arc::new(client.clone()),
        }
    }

    /// Client options whose transport is [`Emulator::http_client`]; adjust them (api-version,
    /// retry policy) and pass them to `CommunicationIdentityClient::from_connection_string`.
    pub fn client_options(&self) -> CommunicationIdentityClientOptions {
        let mut options = CommunicationIdentityClientOptions::default();
        options.client_options.transport = Some(Transport::new(self.http_client()));
        options
    }

    /// A client of this emulator with the primary key, trusting its CA.
    pub fn client(&self) -> CommunicationIdentityClient {
        self.client_with(self.client_options())
    }

    /// A client of this emulator with the primary key and `options` (see
    /// [`Emulator::client_options`]).
    pub fn client_with(
        &self,
        options: CommunicationIdentityClientOptions,
    ) -> CommunicationIdentityClient {
        CommunicationIdentityClient::from_connection_string(
            &self.connection_string(),
            Some(options),
        )
        .unwrap_or_else(|e| unreachable!("the emulator's connection string is valid: {e}"))
    }

    /// The service's current time: the system's plus every [`Emulator::advance`].
    pub fn now(&self) -> time::OffsetDateTime {
        self.state.clock().now()
    }

    /// Moves the service's clock forward by `by`, at once: tokens issued before expire, new
    /// ones are issued from the new time. Request signatures are still checked against the
    /// real time, which clients sign with.
    pub fn advance(&self, by: std::time::Duration) {
        self.clock.advance(time::Duration::try_from(by).unwrap_or(time::Duration::MAX));
    }

    /// Answers the next `count` requests of `operation` with `status` and the service's error
    /// body: `429 TooManyRequests` and `503 ServiceUnavailable` with `Retry-After: 1`, other
    /// statuses with an error code of their own. Faults for one operation queue up in order.
    ///
    /// # Panics
    ///
    /// When `status` is not an error status (400–599).
    pub fn fail_next(&self, operation: Operation, status: u16, count: usize) {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or_else(|| panic!("fail_next: {status} is not an error status (400-599)"));
        self.faults.add(operation, status, count);
    }

    /// How many requests of `operation` [`Emulator::fail_next`] will still fail.
    pub fn pending_faults(&self, operation: Operation) -> usize {
        self.faults.pending(operation)
    }

    /// Stops the emulator: closes the listener (in-flight requests finish), the store, and
    /// removes the CA's temporary directory. Dropping it stops it too, without waiting.
    pub async fn shutdown(mut self) {
        match &mut self.mode {
            Mode::Socket { server, .. } => {
                if let Some(server) = server.take() {
                    server.shutdown().await;
                }
            }
            Mode::InProcess { store, .. } => store.close().await,
        }
    }
}
