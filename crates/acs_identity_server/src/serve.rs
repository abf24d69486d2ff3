//! Listeners and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use acs_identity_core::hmac::KeyName;
use acs_identity_core::{Clock, SystemClock};
use acs_identity_store::{AnyStore, OpenOptions};
use anyhow::Context as _;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceBuilder;

use crate::audit::AuditWriter;
use crate::authority::Authority;
use crate::entra::EntraTrust;
use crate::state::{HttpSettings, StateParts};
use crate::transport::Transport;
use crate::{app, tls, AppState, Config};

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the store `config` names (in memory, the SQLite file of the data directory, or the
/// PostgreSQL database of `database_url`), its operations counted in `metrics`, and with
/// `config.dev` makes sure it holds the development resource. Returns the store and a
/// description of where it is, for the log and the banner.
pub async fn open_store(
    config: &Config,
    clock: &dyn Clock,
    metrics: &crate::telemetry::Metrics,
) -> anyhow::Result<(AnyStore, String)> {
    let (store, location) = if config.in_memory {
        let store = acs_identity_store::SqliteStore::in_memory_observed(metrics.store())
            .await
            .context("cannot open the in-memory store")?;
        (AnyStore::Sqlite(store), "in-memory SQLite database".to_owned())
    } else {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let location = config.store_location()?;
        let options = OpenOptions {
            max_connections: config.database_max_connections,
            metrics: metrics.store(),
        };
        let store = AnyStore::open_with(&location, options)
            .await
            .with_context(|| format!("cannot open the {location}"))?;
        (store, location.to_string())
    };
    if config.dev {
        crate::dev::ensure_dev_resource(
            store.shared().as_ref(),
            clock,
            &config.data_location,
            config.signing_alg,
        )
        .await?;
    }
    Ok((store, location))
}

/// A running service.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    store: AnyStore,
    https: SocketAddr,
    http: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
    ca: Option<PathBuf>,
    entra_authority: Option<Arc<Authority>>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    audit: Option<AuditWriter>,
    /// With `in_memory`, the temporary directory of the development CA, removed on shutdown.
    temp: Option<tempfile::TempDir>,
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
        Self::start_with(config, clock, HttpSettings::from_config(config), |router| router).await
    }

    /// As [`Server::start_with_clock`], with given HTTP settings and `wrap` applied to the
    /// router (for a layer of the embedding program, e.g. the emulator's fault injection).
    pub async fn start_with(
        config: &Config,
        clock: Arc<dyn Clock>,
        http: HttpSettings,
        wrap: impl FnOnce(Router) -> Router,
    ) -> anyhow::Result<Server> {
        let metrics = crate::telemetry::Metrics::new(config.metrics);
        let (store, location) = open_store(config, clock.as_ref(), &metrics).await?;
        tracing::info!(store = %location, "store opened");
        let node = store.register_node().await?;
        // In memory, the development CA and the authority's key go to a temporary directory.
        let mut temp = None;
        let mut scratch = |name: &str| -> anyhow::Result<PathBuf> {
            if !config.in_memory {
                return Ok(config.data_dir.join(name));
            }
            if temp.is_none() {
                temp = Some(
                    tempfile::Builder::new()
                        .prefix("acs-identity-")
                        .tempdir()
                        .context("cannot create a temporary directory")?,
                );
            }
            Ok(temp.as_ref().map(|t: &tempfile::TempDir| t.path().join(name)).unwrap_or_default())
        };
        // The Entra authority's listener is bound first: its issuers name its port.
        let mut entra_config = config.entra.clone();
        let authority = match config.entra_listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (entra_listen)"))?;
                let mut authority = Authority::open(
                    &scratch("entra")?,
                    endpoint("https", listener.local_addr()?),
                    config.entra_directory.effective(config.dev),
                    clock.clone(),
                )?;
                let proxy = match config.entra_proxy_listen {
                    Some(addr) => {
                        let proxy = TcpListener::bind(addr).await.with_context(|| {
                            format!("cannot listen on {addr} (entra_proxy_listen)")
                        })?;
                        authority.set_proxy(endpoint("http", proxy.local_addr()?));
                        Some(proxy)
                    }
                    None => None,
                };
                entra_config.issuers.extend(authority.trusted_issuers());
                Some((listener, Arc::new(authority), proxy))
            }
            None => None,
        };
        let entra = EntraTrust::load(&entra_config).await?;
        let (audit_sink, audit) = crate::audit::open(&config.audit_log).await?;
        let state = AppState::bootstrap(StateParts {
            store: store.shared(),
            clock: clock.clone(),
            data_location: config.data_location.clone(),
            alg: config.signing_alg,
            http,
            entra,
            audit: audit_sink,
            metrics: metrics.clone(),
        })
        .await?;

        let (cert, key, ca) = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone(), None),
            _ => {
                let tls_dir = scratch("tls")?;
                let files = tls::ensure_dev_certificate(&tls_dir, clock.now())?;
                (files.cert, files.key, files.ca)
            }
        };
        let acceptor = TlsAcceptor::from(tls::server_config(&cert, &key)?);

        let router = wrap(app(state.clone()));
        let (shutdown, signal) = watch::channel(false);
        let limits = ConnectionLimits::new(config);
        let mut tasks = JoinSet::new();
        // SQLite has no node rows: the keys' version is read before every request instead
        // (`AppState::ensure_current_keys`).
        if let Some(node) = node {
            let watcher = crate::key_sync::watch_nodes_keys(
                state.clone(),
                store.clone(),
                node,
                signal.clone(),
            );
            tasks.spawn(watcher);
        }
        let flusher = (state.clone(), signal.clone());
        tasks.spawn(async move { flusher.0.run_token_flusher(flusher.1).await });
        let mut entra_proxy = None;
        let entra_authority = match authority {
            Some((listener, authority, proxy)) => {
                if let Some(proxy) = proxy {
                    entra_proxy = Some((proxy, listener.local_addr()?, authority.clone()));
                }
                tasks.spawn(accept_loop(
                    listener,
                    Some(acceptor.clone()),
                    crate::authority::router(authority.clone()),
                    limits,
                    signal.clone(),
                ));
                Some(authority)
            }
            None => None,
        };
        let https_listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let https = https_listener.local_addr()?;
        let https_router = router.clone().layer(axum::Extension(Transport::Https));
        tasks.spawn(accept_loop(
            https_listener,
            Some(acceptor),
            https_router,
            limits,
            signal.clone(),
        ));
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
                    limits,
                    signal.clone(),
                ));
                Some(bound)
            }
            None => None,
        };
        let metrics = match config.metrics_listen.filter(|_| metrics.enabled()) {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (metrics_listen)"))?;
                let bound = l.local_addr()?;
                let router = crate::routes::metrics_router(metrics);
                tasks.spawn(accept_loop(l, None, router, limits, signal.clone()));
                tracing::info!(address = %bound, "serving /metrics");
                Some(bound)
            }
            None => None,
        };
        if let Some((listener, entra, authority)) = entra_proxy {
            let proxy_tls = tls::config_for_hosts(
                &scratch("tls")?,
                crate::authority::PUBLIC_CLOUD_HOSTS,
                clock.now(),
            )?;
            let local = std::iter::once(https).chain(http).chain([entra]).collect();
            let proxy = crate::authority::proxy::EntraProxy::new(authority, proxy_tls, local);
            tasks.spawn(accept_loop(listener, None, proxy.router(), limits, signal));
        }
        Ok(Server {
            state,
            store,
            https,
            http,
            metrics,
            ca,
            entra_authority,
            shutdown,
            tasks,
            audit,
            temp,
        })
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

    /// The address of `metrics_listen` bound, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
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

    /// The built-in Entra authority, when `entra_listen` is set.
    pub fn entra_authority(&self) -> Option<&Authority> {
        self.entra_authority.as_deref()
    }

    /// The primary connection string for the HTTPS endpoint. Secret.
    pub fn connection_string(&self) -> String {
        self.state.connection_string(&self.endpoint(), KeyName::Primary)
    }

    /// The web console's address with the primary key in its fragment. Secret.
    pub fn console_link(&self) -> String {
        let key = self.state.keys().encoded(KeyName::Primary).unwrap_or_default().to_owned();
        crate::state::console_link(&self.endpoint(), &key)
    }

    /// Stops accepting new connections; in-flight requests go on. [`Server::shutdown`]
    /// waits for them.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Stops accepting, lets in-flight requests finish, writes the pending
    /// `lastTokenIssuedAt` times and the audit log's last lines, and closes the store.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.state.flush_token_marks().await;
        if let Some(audit) = self.audit.take() {
            audit.finish().await;
        }
        self.store.close().await;
        if let Some(temp) = self.temp.take() {
            let _ = temp.close();
        }
    }
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

/// What the HTTP parser and the connection driver enforce per connection.
#[derive(Clone, Copy, Debug)]
struct ConnectionLimits {
    /// Close a connection that has had no request in flight this long.
    idle: Duration,
    /// The parser's own bound on a request head, in bytes.
    parser_head_bytes: usize,
}

impl ConnectionLimits {
    fn new(config: &Config) -> Self {
        ConnectionLimits {
            idle: Duration::from_secs(config.idle_timeout_seconds),
            // Twice the layer's limit, so heads between the two get the 431 with ACS's body;
            // hyper's HTTP/1 buffer cannot be smaller than 8 KiB.
            parser_head_bytes: config.max_header_bytes.saturating_mul(2).max(8192),
        }
    }

    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper's header read timer also runs while a keep-alive connection waits for its
        // next request, so it is the HTTP/1 idle timeout; a head over the buffer gets a
        // bare 431 from hyper, and so do more than 100 header fields.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.idle)
            .max_buf_size(self.parser_head_bytes);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.parser_head_bytes).unwrap_or(u32::MAX));
        builder
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    mut signal: watch::Receiver<bool>,
) {
    // Every connection task holds a receiver; `closed()` resolves when the last one ends.
    let (drain, connections) = watch::channel(());
    let builder = Arc::new(limits.builder());
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
        let router = router.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        let shutdown = signal.clone();
        let held = connections.clone();
        tokio::spawn(async move {
            match tls {
                Some(tls) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await
                    else {
                        return;
                    };
                    serve_connection(&builder, stream, router, limits.idle, shutdown).await;
                }
                None => serve_connection(&builder, stream, router, limits.idle, shutdown).await,
            }
            drop(held);
        });
    }
    drop(listener);
    drop(connections);
    if tokio::time::timeout(DRAIN_TIMEOUT, drain.closed()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}");
    }
}

/// Serves one connection until the client closes it, it has been idle for `idle`, or the
/// service shuts down; the last two close it gracefully (a request in flight finishes).
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    router: Router,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let tracked = activity.clone();
    let service = ServiceBuilder::new()
        .map_future(move |response| {
            let in_flight = Activity::begin(&tracked);
            async move {
                let response = response.await;
                drop(in_flight);
                response
            }
        })
        .service(router);
    let conn =
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let mut closing = *shutdown.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = shutdown.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = activity.idle_for(idle), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Requests in flight on one connection, and since when it has had none.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    idle_since: std::sync::Mutex<Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            idle_since: std::sync::Mutex::new(Instant::now()),
        }
    }
}

/// One request in flight; ending it may start the idle time.
struct InFlight(Arc<Activity>);

impl Activity {
    fn begin(this: &Arc<Activity>) -> InFlight {
        this.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(this.clone())
    }

    /// Resolves once the connection has had no request in flight for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let wait = if self.in_flight.load(Ordering::Acquire) > 0 {
                limit
            } else {
                let since = *self.idle_since.lock().unwrap_or_else(|e| e.into_inner());
                match limit.checked_sub(since.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return,
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut since = self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            *since = Instant::now();
        }
    }
}
