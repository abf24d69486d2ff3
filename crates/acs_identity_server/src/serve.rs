//! Listeners and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use acs_identity_core::hmac::KeyName;
use acs_identity_core::{Clock, SystemClock};
use acs_identity_store::AnyStore;
use anyhow::Context as _;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::entra::EntraTrust;
use crate::state::HttpSettings;
use crate::{app, tls, AppState, Config};

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A running service.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    store: AnyStore,
    https: SocketAddr,
    http: Option<SocketAddr>,
    ca: Option<PathBuf>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Server {
    /// Opens the store (the SQLite file in the data directory, or the PostgreSQL database
    /// of `database_url`), creates the resource on first start, binds the listeners and
    /// starts serving.
    pub async fn start(config: &Config) -> anyhow::Result<Server> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`Server::start`], with a given clock.
    pub async fn start_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let location = config.store_location()?;
        let store = AnyStore::open(&location)
            .await
            .with_context(|| format!("cannot open the {location}"))?;
        tracing::info!(store = %location, "store opened");
        let entra = EntraTrust::load(&config.entra).await?;
        let state = AppState::bootstrap(
            store.shared(),
            clock.clone(),
            &config.data_location,
            config.signing_alg,
            HttpSettings {
                max_body_bytes: config.max_body_bytes,
                public_hosts: config.public_hosts.clone(),
                throttle: config.throttle.clone(),
            },
            entra,
        )
        .await?;

        let (cert, key, ca) = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone(), None),
            _ => {
                let files = tls::ensure_dev_certificate(&config.tls_dir(), clock.now())?;
                (files.cert, files.key, files.ca)
            }
        };
        let acceptor = TlsAcceptor::from(tls::server_config(&cert, &key)?);

        let router = app(state.clone());
        let (shutdown, signal) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(reload_keys(state.clone(), signal.clone()));
        let https_listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let https = https_listener.local_addr()?;
        let https_router = router.clone().layer(axum::Extension(Transport::Https));
        tasks.spawn(accept_loop(https_listener, Some(acceptor), https_router, signal.clone()));
        let http = match config.http_listen {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?;
                let bound = l.local_addr()?;
                tasks.spawn(accept_loop(
                    l,
                    None,
                    router.layer(axum::Extension(Transport::Http)),
                    signal,
                ));
                Some(bound)
            }
            None => None,
        };
        Ok(Server { state, store, https, http, ca, shutdown, tasks })
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The HTTPS address bound.
    pub fn https_addr(&self) -> SocketAddr {
        self.https
    }

    /// The plain-HTTP address bound, if any.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// `https://127.0.0.1:<port>` (a wildcard listen address is shown as loopback).
    pub fn endpoint(&self) -> String {
        endpoint("https", self.https)
    }

    /// `http://127.0.0.1:<port>`, if plain HTTP is on.
    pub fn http_endpoint(&self) -> Option<String> {
        self.http.map(|a| endpoint("http", a))
    }

    /// The development CA file, when serving the development certificate.
    pub fn ca_path(&self) -> Option<&std::path::Path> {
        self.ca.as_deref()
    }

    /// The primary connection string for the HTTPS endpoint. Secret.
    pub fn connection_string(&self) -> String {
        self.state.connection_string(&self.endpoint(), KeyName::Primary)
    }

    /// Stops accepting new connections; in-flight requests go on. [`Server::shutdown`]
    /// waits for them.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Stops accepting, lets in-flight requests finish, and closes the store.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.store.close().await;
    }
}

/// Which listener a request arrived on (a request extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The HTTPS listener.
    Https,
    /// The plain-HTTP listener.
    Http,
}

/// `scheme://host:port` for a bound address, with wildcards shown as loopback.
pub fn endpoint(scheme: &str, addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("{scheme}://{ip}:{}", addr.port())
}

/// How often a node looks for regenerated access keys and new signing keys.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_millis(250);

async fn reload_keys(state: AppState, mut signal: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(KEY_RELOAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = state.reload_keys().await {
                    tracing::warn!(error = %e, "cannot reload keys");
                }
            }
            _ = signal.changed() => break,
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut signal: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let builder = Arc::new(builder);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = signal.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(tls) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await
                    else {
                        return;
                    };
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
                None => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}");
    }
}
